package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devctl/devctl/internal/mocks/externalsecrets"
	"github.com/devctl/devctl/internal/mocks/s3"
	"github.com/devctl/devctl/internal/mocks/vault"
	"github.com/devctl/devctl/internal/version"
)

var errUsage = errors.New("usage: devctl-mocks vault|s3|eso|version [flags] (-h for a command's flags)")

// run runs one stand-in until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("devctl-mocks "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "log every request (never secrets)")
	level := func() slog.Level {
		if *verbose {
			return slog.LevelDebug
		}
		return slog.LevelInfo
	}
	logger := func() *slog.Logger {
		return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level()})).With("mock", cmd)
	}
	switch cmd {
	case "vault":
		addr := fs.String("addr", ":8200", "listen address")
		tokenFile := fs.String("token-file", "", "file holding the one accepted token (or $DEVCTL_VAULT_TOKEN)")
		mounts := fs.String("mount", vault.DefaultMount, "KV v2 mounts, comma-separated")
		state := fs.String("state", "", "state file, rewritten atomically after every change")
		seed := fs.String("seed", "", "YAML or JSON file of secrets to write at start (path -> keys)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		token, err := secretFrom(*tokenFile, "DEVCTL_VAULT_TOKEN")
		if err != nil {
			return fmt.Errorf("vault token: %w", err)
		}
		log := logger()
		opts := []vault.Option{vault.WithLogger(log), vault.WithMounts(strings.Split(*mounts, ",")...)}
		if *state != "" {
			opts = append(opts, vault.WithStateFile(*state))
		}
		if *seed != "" {
			s, err := vault.LoadSeed(*seed)
			if err != nil {
				return err
			}
			opts = append(opts, vault.WithSeed(s))
		}
		h, err := vault.New(token, opts...)
		if err != nil {
			return err
		}
		return serve(ctx, log, *addr, h)

	case "s3":
		addr := fs.String("addr", ":9000", "listen address")
		credDir := fs.String("credentials-dir", "", "directory with files accessKeyId and secretAccessKey (or $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)")
		buckets := fs.String("bucket", "", "buckets to create at start, comma-separated")
		region := fs.String("region", s3.DefaultRegion, "region requests must be signed for")
		data := fs.String("data", "", "directory for objects (default: memory)")
		health := fs.String("health-addr", "", "listen address of /healthz and /readyz (default: none)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var creds s3.Credentials
		var err error
		if creds.AccessKeyID, err = secretFrom(join(*credDir, "accessKeyId"), "AWS_ACCESS_KEY_ID"); err != nil {
			return fmt.Errorf("s3 access key: %w", err)
		}
		if creds.SecretAccessKey, err = secretFrom(join(*credDir, "secretAccessKey"), "AWS_SECRET_ACCESS_KEY"); err != nil {
			return fmt.Errorf("s3 secret key: %w", err)
		}
		log := logger()
		opts := []s3.Option{s3.WithLogger(log), s3.WithRegion(*region)}
		if *buckets != "" {
			opts = append(opts, s3.WithBuckets(strings.Split(*buckets, ",")...))
		}
		if *data != "" {
			opts = append(opts, s3.WithDataDir(*data))
		}
		h, err := s3.New(creds, opts...)
		if err != nil {
			return err
		}
		if *health != "" {
			go func() { _ = serve(ctx, log, *health, healthHandler(func() bool { return true })) }()
		}
		return serve(ctx, log, *addr, h)

	case "eso":
		health := fs.String("health-addr", ":8081", "listen address of /healthz and /readyz")
		kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
		namespace := fs.String("namespace", "", "watch one namespace (default: all)")
		workers := fs.Int("workers", 2, "concurrent syncs")
		store := fs.String("cluster-store", "", "create or update this ClusterSecretStore for the Vault stand-in")
		server := fs.String("vault-server", "", "the store's Vault address")
		path := fs.String("vault-path", vault.DefaultMount, "the store's KV v2 mount")
		tokenSecret := fs.String("token-secret", "", "the store's token Secret: NAMESPACE/NAME[:KEY]")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := restConfig(*kubeconfig)
		if err != nil {
			return err
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		log := logger()
		if *store != "" {
			vs, err := parseStore(*store, *server, *path, *tokenSecret)
			if err != nil {
				return err
			}
			if err := retry(ctx, func() error { return externalsecrets.EnsureClusterStore(ctx, dyn, vs) }); err != nil {
				return err
			}
		}
		c := externalsecrets.New(dyn, externalsecrets.WithLogger(log), externalsecrets.WithNamespace(*namespace))
		go func() { _ = serve(ctx, log, *health, healthHandler(c.Ready)) }()
		return c.Run(ctx, *workers)

	case "version":
		_, err := fmt.Fprintf(stdout, "devctl-mocks %s (%s)\n", version.Version, version.Commit)
		return err
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, errUsage.Error())
		return nil
	}
	return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
}

// secretFrom reads a secret from file (trimmed), or else from the
// environment variable env.
func secretFrom(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("%s is empty", file)
	}
	if s := os.Getenv(env); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("give a file or set $%s", env)
}

func join(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

func parseStore(name, server, path, tokenSecret string) (externalsecrets.VaultStore, error) {
	ns, rest, ok := strings.Cut(tokenSecret, "/")
	if !ok || ns == "" || rest == "" || server == "" {
		return externalsecrets.VaultStore{}, errors.New("--cluster-store needs --vault-server and --token-secret NAMESPACE/NAME[:KEY]")
	}
	secretName, key, _ := strings.Cut(rest, ":")
	return externalsecrets.VaultStore{Name: name, Server: server, Path: path, TokenNamespace: ns, TokenName: secretName, TokenKey: key}, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster configuration (outside a cluster, pass --kubeconfig): %w", err)
	}
	return cfg, nil
}

// retry runs f until it succeeds, for at most a minute: the API server may
// not have established a CRD installed a moment ago.
func retry(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func healthHandler(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// serve serves h on addr until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, log *slog.Logger, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return <-errc
}
