// Package version holds devctl's build information, set with -ldflags.
package version

// Set at link time by the Makefile.
var (
	Version = "dev"
	Commit  = "unknown"
)
