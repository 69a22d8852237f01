// Command devctl-core is devctl's full build: every command, the daemon
// included. Users run devctl (cmd/devctl), which checks plain manifests
// itself and runs devctl-core, installed beside it, for everything else.
package main

import "github.com/devctl/devctl/cmd/devctl/app"

func main() { app.Main() }
