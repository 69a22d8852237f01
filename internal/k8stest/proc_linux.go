package k8stest

import "syscall"

// sysProcAttr puts a component in its own process group (so Stop reaches
// anything it spawns) and has the kernel kill it when the test binary dies,
// even by SIGKILL, so no component outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
