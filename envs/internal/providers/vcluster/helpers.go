package vcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/devctl/devctl/envs/internal/privfile"
	"github.com/devctl/devctl/internal/kube"
)

// clientcmdMinifyFlatten keeps only the current context and inlines the
// files it refers to (certificates, keys).
func clientcmdMinifyFlatten(cfg *clientcmdapi.Config) error {
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return err
	}
	return clientcmdapi.FlattenConfig(cfg)
}

// writeFile writes b to path (mode 0600) so a reader never sees half of
// it.
func writeFile(path string, b []byte) error { return privfile.Write(path, b) }

func clientFromBytes(kubeconfig []byte) (*kube.Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	set, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &kube.Client{Config: cfg, Set: set}, nil
}

func dockerImagePresent(ctx context.Context, ref string) bool {
	return exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", ref).Run() == nil
}

// dockerSave streams `docker save refs...`; Close waits for docker and
// reports its failure.
func dockerSave(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"save"}, refs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("docker save: %w", err)
	}
	return &cmdReader{ReadCloser: out, cmd: cmd, stderr: &stderr}, nil
}

type cmdReader struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func (r *cmdReader) Close() error {
	_, _ = io.Copy(io.Discard, r.ReadCloser)
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("docker save: %w: %s", err, strings.TrimSpace(r.stderr.String()))
	}
	return nil
}

// nodeImages are the images the kind node container's containerd has (none
// when it cannot be asked).
func nodeImages(ctx context.Context, node string) map[string]bool {
	have := map[string]bool{}
	out, err := exec.CommandContext(ctx, "docker", "exec", node, "ctr", "--namespace=k8s.io", "images", "list", "-q").Output()
	if err != nil {
		return have
	}
	for _, l := range strings.Split(string(out), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	return have
}

// hostAnswers says whether the API server of the kubeconfig file answers
// within two seconds.
func hostAnswers(ctx context.Context, kubeconfig string) bool {
	c, err := kube.NewClient(kubeconfig)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Ready(ctx) == nil
}
