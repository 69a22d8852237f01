// Package app is devctl's command line: Main parses the process's arguments
// and exits; Run does the work and is what tests call.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/devctl/devctl/internal/check"
)

// Streams are the standard streams a command uses.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// exitError carries an exit code without a message of its own (the command
// already printed what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs devctl with os.Args and exits. A first interrupt cancels the
// running command; a second one exits at once.
func Main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "devctl: interrupted twice, exiting")
		os.Exit(130)
	}()
	streams := Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	err := Run(ctx, streams, os.Args[1:])
	cancel()
	os.Exit(exitCode(streams.ErrOut, err))
}

func exitCode(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ce check.ExitError
	if errors.As(err, &ce) {
		return ce.Code
	}
	code := 1
	var coded codedError
	if errors.As(err, &coded) {
		code = coded.code
	}
	check.PrintError(w, err)
	return code
}

// Run runs devctl with args (without the program name).
func Run(ctx context.Context, streams Streams, args []string) error {
	cmd := NewRootCommand(streams)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}
