// Command pause is the sandbox ("pause") container of the kind node image: it
// holds a pod's namespaces open, reaps orphaned children when it is PID 1, and
// exits on SIGINT or SIGTERM. It is built statically and shipped FROM scratch.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (devctl)")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	wait(sigs, os.Stderr)
}

// wait reaps children on SIGCHLD and returns on any other signal.
func wait(sigs <-chan os.Signal, log io.Writer) {
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			fmt.Fprintf(log, "pause: shutting down, got signal %v\n", sig)
			return
		}
		reap()
	}
}

// reap collects every exited child so none is left as a zombie.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
