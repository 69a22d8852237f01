package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/mocks"
	"github.com/devctl/devctl/internal/mocks/ready"
)

// platformAdapter binds Platform to client-go, the Docker engine and
// go-containerregistry.
type platformAdapter struct {
	log     *slog.Logger
	clients *kube.Clients
	images  *imagesAdapter

	mu sync.Mutex
	// built caches the stand-ins' image by the binary's path, size and
	// modification time.
	builtKey string
	built    v1.Image
	builtRef string
}

func (a *platformAdapter) StandInImage(_ context.Context) (string, func() (io.ReadCloser, error), error) {
	bin, err := mocks.FindBinary()
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", nil, err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", bin, fi.Size(), fi.ModTime().UnixNano())
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.builtKey != key {
		img, err := standInImage(bin)
		if err != nil {
			return "", nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return "", nil, err
		}
		a.built, a.builtRef, a.builtKey = img, mocks.ImageRepository+":"+d.Hex[:12], key
	}
	img, ref := a.built, a.builtRef
	archive := func() (io.ReadCloser, error) {
		tag, err := name.NewTag(ref)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
		return pr, nil
	}
	return ref, archive, nil
}

// standInImage is the static devctl-mocks binary in an empty image, as
// mocks.Dockerfile says, assembled in memory: same binary, same digest.
func standInImage(bin string) (v1.Image, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (build it with `make build`)", bin, err)
	}
	goos, arch, cgo := "", runtime.GOARCH, ""
	for _, s := range info.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			arch = s.Value
		case "CGO_ENABLED":
			cgo = s.Value
		}
	}
	if goos != "" && goos != "linux" {
		return nil, fmt.Errorf("%s is built for %s; the stand-ins run on Linux nodes: build it with GOOS=linux CGO_ENABLED=0 (`make build` does)", bin, goos)
	}
	if cgo == "1" {
		return nil, fmt.Errorf("%s is not a static build and cannot run FROM scratch: build it with CGO_ENABLED=0 (`make build` does)", bin)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: mocks.BinaryName, Mode: 0o755, Size: int64(len(b)), ModTime: epoch,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithCompressionLevel(1))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{"/" + mocks.BinaryName}
	cf.Config.User = "65532:65532"
	cf.Config.Labels = map[string]string{"devctl.dev/component": "platform-mocks"}
	return mutate.ConfigFile(img, cf)
}

func (a *platformAdapter) HasImage(ctx context.Context, ref string) (bool, error) {
	b, err := a.images.builder(ctx)
	if err != nil {
		return false, err
	}
	ok, err := b.ImageExists(ctx, ref)
	a.images.reset(err)
	return ok, err
}

func (a *platformAdapter) Check(ctx context.Context, kubeconfig, ns, release, dep string) (string, error) {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return "", err
	}
	switch dep {
	case config.DepSecrets:
		for _, comp := range []string{mocks.ComponentVault, mocks.ComponentExternalSecrets} {
			if err := c.WaitRollout(ctx, ns, mocks.Instance(release, comp)); err != nil {
				return "", err
			}
		}
		if err := crdsServed(ctx, c, "external-secrets.io/v1", "externalsecrets", "clustersecretstores"); err != nil {
			return "", err
		}
		data, err := secretData(ctx, c, ns, mocks.VaultTokenSecret(release))
		if err != nil {
			return "", err
		}
		return a.forwarded(ctx, c, ns, mocks.Instance(release, mocks.ComponentVault), mocks.VaultPort, func(addr string) error {
			return ready.Vault(ctx, "http://"+addr, string(data["token"]))
		}, "sys/health and token lookup")
	case config.DepPostgres:
		inst := mocks.Instance(release, mocks.ComponentPostgres)
		if err := c.WaitRollout(ctx, ns, inst); err != nil {
			return "", err
		}
		data, err := secretData(ctx, c, ns, mocks.PostgresSecret)
		if err != nil {
			return "", err
		}
		return a.forwarded(ctx, c, ns, inst, mocks.PostgresPort, func(addr string) error {
			return ready.Postgres(ctx, addr, string(data["username"]), string(data["password"]), string(data["database"]))
		}, "SELECT 1")
	case config.DepS3:
		inst := mocks.Instance(release, mocks.ComponentS3)
		if err := c.WaitRollout(ctx, ns, inst); err != nil {
			return "", err
		}
		data, err := secretData(ctx, c, ns, mocks.S3Secret)
		if err != nil {
			return "", err
		}
		return a.forwarded(ctx, c, ns, inst, mocks.S3Port, func(addr string) error {
			return ready.S3(ctx, "http://"+addr, string(data["region"]), string(data["accessKeyId"]), string(data["secretAccessKey"]))
		}, "ListBuckets")
	case config.DepMetrics:
		if err := crdsServed(ctx, c, "monitoring.coreos.com/v1", "servicemonitors", "prometheusrules"); err != nil {
			return "", err
		}
		return "ServiceMonitor and PrometheusRule served", nil
	}
	return "", fmt.Errorf("%w: %q", mocks.ErrUnknownDependency, dep)
}

// forwarded runs check against a port-forward to the stand-in.
func (a *platformAdapter) forwarded(ctx context.Context, c *kube.Client, ns, inst string, port int, check func(addr string) error, what string) (string, error) {
	fwd, err := c.StartForward(ctx, ns, inst, port, 0, a.log)
	if err != nil {
		return "", fmt.Errorf("port-forward to %s: %w", inst, err)
	}
	defer fwd.Close()
	if err := check(fmt.Sprintf("127.0.0.1:%d", fwd.LocalPort())); err != nil {
		return "", err
	}
	return what + " ok", nil
}

// secretData reads a Secret the chart generated; its values stay here.
func secretData(ctx context.Context, c *kube.Client, ns, name string) (map[string][]byte, error) {
	for {
		s, err := c.Set.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return s.Data, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// crdsServed waits until the API server serves every resource of gv.
func crdsServed(ctx context.Context, c *kube.Client, gv string, resources ...string) error {
	var last error
	for {
		l, err := c.Set.Discovery().ServerResourcesForGroupVersion(gv)
		if err == nil {
			missing := ""
			for _, r := range resources {
				found := false
				for _, ar := range l.APIResources {
					if ar.Name == r {
						found = true
					}
				}
				if !found {
					missing = r
				}
			}
			if missing == "" {
				return nil
			}
			err = fmt.Errorf("%s not served", missing)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s CRDs: %w (last: %w)", gv, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
