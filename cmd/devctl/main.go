// Command devctl makes a platform team's golden path executable on a laptop
// and in CI. See `devctl --help`.
//
// This binary is devctl's front. It is built with the devctl_lean tag and
// links neither Helm, client-go, the Docker SDK nor the CEL and Rego
// engines, so that it starts in a few milliseconds: it runs `devctl check`
// on plain manifests itself (the pre-push hook, CI) and hands every other
// command to devctl-core, the full build installed beside it, by exec(2):
// same arguments, environment, streams and exit status. Both run the same
// check code (internal/check).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/devctl/devctl/internal/check"
)

// coreName is the full build's file name.
const coreName = "devctl-core"

func main() {
	if inv, ok := check.Plan(os.Args[1:]); ok {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := inv.Run(ctx, check.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
		stop()
		os.Exit(code)
	}
	core, err := corePath()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(core, append([]string{core}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "ERROR: run %s: %v\n", core, err)
	os.Exit(1)
}

// corePath finds devctl-core: $DEVCTL_CORE when set, else beside this
// executable (symbolic links resolved), else on $PATH.
func corePath() (string, error) {
	if p := os.Getenv("DEVCTL_CORE"); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		p := filepath.Join(filepath.Dir(self), coreName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(coreName)
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("%s is not installed beside %s or on PATH: devctl needs it for every command but a check of plain manifests; install both with ./install.sh (or make build: bin/devctl and bin/devctl-core)", coreName, self)
	}
	return p, err
}
