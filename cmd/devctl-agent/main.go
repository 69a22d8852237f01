// Command devctl-agent runs in the app container in live mode: it supervises
// the app, applies the files devctl syncs and restarts the app, with no shell
// or tar needed in the image. See package internal/agent.
package main

import (
	"os"

	"github.com/devctl/devctl/internal/agent"
)

func main() { os.Exit(agent.Main()) }
