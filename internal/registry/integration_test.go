package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devctl/devctl/internal/build/goimage"
)

// dockerClient connects to the engine; integration tests fail (not skip)
// when there is none.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs a Docker engine")
	}
	api, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatalf("integration tests need a Docker engine (start dockerd or set DOCKER_HOST; -short skips them): %v", err)
	}
	return api
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestIntegrationContainersPullFromGateway is what a kind node does, with a
// plain container: on a Docker network of its own, the registry listens on
// the network's gateway, the engine pulls an image from the registry's
// loopback address (images devctl builds without Docker run under Docker),
// and a container started from it fetches a manifest and its blobs from the
// gateway address.
func TestIntegrationContainersPullFromGateway(t *testing.T) {
	api := dockerClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	netName := "devctl-registry-it-" + randomSuffix(t)
	if _, err := api.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = api.NetworkRemove(context.Background(), netName, client.NetworkRemoveOptions{}) })
	gw, err := NetworkGateway(ctx, api, netName)
	if err != nil {
		t.Fatal(err)
	}

	r := newRegistry(t, t.TempDir())
	endpoint, err := r.Listen(ctx, gw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("registry at %v, on %s at %s", r.Addrs(), netName, endpoint)

	res, err := goimage.New(goimage.WithCacheDir(t.TempDir())).Build(ctx, goimage.Spec{Dir: "testdata/fetch"})
	if err != nil {
		t.Fatal(err)
	}
	tag := "it-" + randomSuffix(t)
	pushed, err := r.Push(ctx, res.Image, "it/fetch:"+tag)
	if err != nil {
		t.Fatal(err)
	}

	// The engine pulls from 127.0.0.0/8 over plain HTTP.
	lo, _ := r.loopback()
	ref := lo.String() + "/it/fetch:" + tag
	pull, err := api.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pull.Wait(ctx); err != nil {
		t.Fatalf("docker pull %s: %v", ref, err)
	}
	t.Cleanup(func() {
		_, _ = api.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
	})

	// The gateway address serves pulls only.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+endpoint.String()+"/v2/it/fetch/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("push on the gateway address: %s, want 403 Forbidden", resp.Status)
	}

	out := runContainer(ctx, t, api, netName, ref, "http://"+endpoint.String(), "it/fetch", tag)
	want := fmt.Sprintf("digest %s, 3 blobs", pushed.Digest)
	if !strings.Contains(out, want) {
		t.Errorf("container printed %q, want %q", out, want)
	}
}

// runContainer runs ref with args on network and returns its output; it
// fails the test when the container fails.
func runContainer(ctx context.Context, t *testing.T, api *client.Client, network, ref string, args ...string) string {
	t.Helper()
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: args},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(network)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = api.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := api.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		t.Fatal(err)
	}
	logs, err := api.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logs.Close() }()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("container %s %v exited %d:\n%s%s", ref, args, code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestIntegrationNetworkGatewayMissing checks the error for a network that
// does not exist, as before the first kind cluster.
func TestIntegrationNetworkGatewayMissing(t *testing.T) {
	api := dockerClient(t)
	_, err := NetworkGateway(t.Context(), api, "devctl-no-such-network-"+randomSuffix(t))
	if err == nil || !strings.Contains(err.Error(), "created with the first kind cluster") {
		t.Errorf("NetworkGateway = %v, want a not-found error saying when it appears", err)
	}
}
