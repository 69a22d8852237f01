// Command devctl-mocks runs devctl's stand-ins for platform dependencies
// inside an environment: one small static binary, shipped beside devctl and
// run from a FROM scratch image, so the stand-ins start in milliseconds and
// need no registry.
//
//	devctl-mocks vault [--addr :8200] --token-file F [--mount secret] [--state F] [--seed F]
//	devctl-mocks s3    [--addr :9000] --credentials-dir D [--bucket B] [--region R] [--data D] [--health-addr :8081]
//	devctl-mocks eso   [--health-addr :8081] [--cluster-store vault --vault-server URL --vault-path secret --token-secret NS/NAME]
//	devctl-mocks version
//
// It imports internal/mocks only (not devctl's Helm, kind or Docker code).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
		os.Exit(1)
	}
}
