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
	"strings"
	"syscall"
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
	code := 1
	var ce codedError
	if errors.As(err, &ce) {
		code = ce.code
	}
	msg := err.Error()
	// One banner, then the error; multi-line errors keep their shape.
	if strings.Contains(msg, "\n") {
		fmt.Fprintf(w, "ERROR:\n%s\n", strings.TrimRight(msg, "\n"))
	} else {
		fmt.Fprintf(w, "ERROR: %s\n", msg)
	}
	return code
}

// Run runs devctl with args (without the program name).
func Run(ctx context.Context, streams Streams, args []string) error {
	cmd := NewRootCommand(streams)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}
