// Command devctl makes a platform team's golden path executable on a laptop
// and in CI. See `devctl --help`.
package main

import "github.com/devctl/devctl/cmd/devctl/app"

func main() { app.Main() }
