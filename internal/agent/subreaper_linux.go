package agent

import "syscall"

// setSubreaper makes orphaned descendants children of this process (as if
// it were PID 1), so it can reap them.
func setSubreaper() error {
	const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, linux/prctl.h
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}
