//go:build !unix

package watch

import "io/fs"

func ownedBy(fs.FileInfo, int) bool { return true }
