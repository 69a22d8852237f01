//go:build unix && !linux

package k8stest

import "syscall"

// sysProcAttr puts a component in its own process group. Without Linux's
// parent-death signal, components of a test binary killed by SIGKILL
// survive it; Stop and the stale-directory sweep are the only cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
