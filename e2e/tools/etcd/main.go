// Command etcd is etcd's own server main, built from the Go module proxy at
// the version pinned in e2e/tools/versions.env (ETCD_VERSION).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
