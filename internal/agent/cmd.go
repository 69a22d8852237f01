//go:build unix

package agent

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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devctl/devctl/internal/version"
)

const usage = `devctl-agent runs an app as its child and live-updates it.

Usage:
  devctl-agent [flags] -- COMMAND [ARG...]
  devctl-agent seed [--marker FILE] SRC DST [SRC DST...]
  devctl-agent version

The first form is the app container's command in live mode: the agent
starts COMMAND, forwards signals to it, restarts it on request and serves
its API (token in $` + TokenEnv + `) on --listen.

seed copies SRC to DST (a directory recursively, or a file) keeping modes and
times, without tar; with --marker it does nothing when FILE exists and
creates FILE once every pair is copied.

Flags:
`

// ExitError carries the app's exit code out of Run.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "app exited with code " + strconv.Itoa(e.Code) }

// Main runs the agent with the process's arguments and returns its exit
// code: the app's when the agent was told to stop.
func Main() int {
	err := Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(os.Stderr, "devctl-agent: %v\n", err)
	return 1
}

// Run runs the agent. Cancelling ctx stops the app as SIGTERM does.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "seed":
			return runSeed(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintf(stdout, "devctl-agent %s (%s)\n", version.Version, version.Commit)
			return nil
		}
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return o.run(ctx, stderr)
}

type runOptions struct {
	listen       string
	port         int
	syncDirs     []string
	dir          string
	tokenFile    string
	stopGrace    time.Duration
	startTimeout time.Duration
	onExit       string
	argv         []string
}

func parseFlags(args []string, stderr io.Writer) (*runOptions, error) {
	o := &runOptions{}
	flags := flag.NewFlagSet("devctl-agent", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		flags.PrintDefaults()
	}
	flags.StringVar(&o.listen, "listen", ":"+strconv.Itoa(DefaultPort), "address of the agent's API")
	flags.IntVar(&o.port, "port", 0, "the app's port: a restart is done once 127.0.0.1:PORT accepts connections (0: once started)")
	flags.Func("sync", "a directory syncs may write into (repeatable)", func(s string) error {
		o.syncDirs = append(o.syncDirs, s)
		return nil
	})
	flags.StringVar(&o.dir, "dir", "/devctl", "the agent's directory: the synced entrypoint (app/) and state")
	flags.StringVar(&o.tokenFile, "token-file", "", "read the API token from this file instead of $"+TokenEnv)
	flags.DurationVar(&o.stopGrace, "stop-grace", 5*time.Second, "time between SIGTERM and SIGKILL on a restart")
	flags.DurationVar(&o.startTimeout, "start-timeout", 30*time.Second, "how long a restart waits for the app to listen")
	flags.StringVar(&o.onExit, "on-exit", "restart", "when the app exits on its own: restart (after a backoff) or exit (the agent exits with its code)")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	o.argv = flags.Args()
	if len(o.argv) == 0 {
		flags.Usage()
		return nil, errors.New("no app command: pass it after --")
	}
	if o.onExit != "restart" && o.onExit != "exit" {
		return nil, fmt.Errorf("--on-exit %q: want restart or exit", o.onExit)
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--port %d: want 0-65535", o.port)
	}
	return o, nil
}

func (o *runOptions) token() (string, error) {
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := os.Getenv(TokenEnv); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("no API token: set %s or --token-file", TokenEnv)
}

func (o *runOptions) run(ctx context.Context, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("logger", "devctl-agent")
	token, err := o.token()
	if err != nil {
		return err
	}
	// As PID 1 the agent inherits every orphan in the container; elsewhere
	// it asks to (Linux), so it can reap them too.
	reapAll := os.Getpid() == 1 || setSubreaper() == nil

	// Signals first: none may be lost once the app runs.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigc)

	appDir := filepath.Join(o.dir, "app")
	sup, err := NewSupervisor(SupervisorOptions{
		Argv:         o.argv,
		Override:     OverridePath(appDir, o.argv[0]),
		Port:         o.port,
		StopGrace:    o.stopGrace,
		StartTimeout: o.startTimeout,
		ExitWithApp:  o.onExit == "exit",
		ReapAll:      reapAll,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	defer sup.Close()
	srv, err := NewServer(sup, ServerOptions{
		Token:      token,
		Version:    version.Version,
		SyncDirs:   o.syncDirs,
		Entrypoint: o.argv[0],
		AppDir:     appDir,
		StateFile:  filepath.Join(o.dir, "state.json"),
		Logger:     log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("agent API: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("agent API stopped", "err", err)
		}
	}()
	log.Info("agent started", "version", version.Version, "api", ln.Addr().String(), "port", o.port, "syncs", strings.Join(o.syncDirs, ","), "pid1", os.Getpid() == 1)

	sup.Start()
	ctxDone := ctx.Done()
	for stopping := false; ; {
		select {
		case sig := <-sigc:
			s, _ := sig.(syscall.Signal)
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				if !stopping {
					log.Info("stopping the app", "signal", signalName(s))
				}
				stopping = true
				sup.Terminate(s)
				continue
			}
			_ = sup.Signal(s) // an app that is not running has nothing to signal
		case <-ctxDone:
			ctxDone = nil
			stopping = true
			sup.Terminate(syscall.SIGTERM)
		case <-sup.Done():
			e := sup.Exit()
			log.Info("app stopped, agent exiting", "exit", e.String())
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = hs.Shutdown(sctx) // then close whatever is left
			cancel()
			if e.Code != 0 {
				return &ExitError{Code: e.Code}
			}
			return nil
		}
	}
}

func runSeed(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("devctl-agent seed", flag.ContinueOnError)
	flags.SetOutput(stderr)
	marker := flags.String("marker", "", "skip when this file exists; create it when done")
	if err := flags.Parse(args); err != nil {
		return err
	}
	pairs := flags.Args()
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		return errors.New("seed: want SRC DST pairs")
	}
	if *marker != "" {
		if _, err := os.Stat(*marker); err == nil {
			fmt.Fprintf(stdout, "seed: %s exists, already seeded\n", *marker)
			return nil
		}
	}
	for i := 0; i < len(pairs); i += 2 {
		src, dst := pairs[i], pairs[i+1]
		if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
			// A directory the image does not have yet: it starts empty.
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			fmt.Fprintf(stdout, "seed: %s is not in the image, %s starts empty\n", src, dst)
			continue
		}
		t := time.Now()
		st, err := Seed(src, dst)
		if err != nil {
			return err
		}
		for _, s := range st.Skipped {
			fmt.Fprintf(stderr, "seed: skipped %s: not a file, directory or symbolic link\n", s)
		}
		fmt.Fprintf(stdout, "seed: %s -> %s: %d files, %d directories, %d links, %d bytes in %s\n",
			src, dst, st.Files, st.Dirs, st.Links, st.Bytes, time.Since(t).Round(time.Millisecond))
	}
	if *marker != "" {
		if err := os.WriteFile(*marker, nil, 0o644); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}
