package watch

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// ErrWatchLimit is wrapped by the errors saying that the kernel's inotify
// limits are too low for the folders to watch. Their text gives the
// commands that raise the limit now and after a reboot.
var ErrWatchLimit = errors.New("inotify limit too low")

const (
	sysctlWatches   = "fs.inotify.max_user_watches"
	sysctlInstances = "fs.inotify.max_user_instances"
	// The values suggested are at least these, the ones IDEs recommend.
	minWatches   = 524288
	minInstances = 512
)

// CheckLimits counts the folders a Watcher with o would watch (one inotify
// watch each) and compares them, and the one inotify instance it needs, with
// the kernel's limits for this user less what this user's processes already
// use. When a limit is too low the error wraps ErrWatchLimit. Where there is
// no inotify (no /proc/sys/fs/inotify) it returns nil.
func CheckLimits(ctx context.Context, o Options) error {
	need, err := countDirs(ctx, o)
	if err != nil {
		return err
	}
	l := readLimits(cmp.Or(o.ProcDir, "/proc"))
	if l.maxInstances > 0 && l.instances+1 > l.maxInstances {
		return instancesError(l)
	}
	return watchesError(l, need, 0, false)
}

// countDirs returns how many folders a Watcher with o watches.
func countDirs(ctx context.Context, o Options) (int, error) {
	o.NewNotifier = func() (Notifier, error) { return nopNotifier{}, nil }
	w, err := New(ctx, o)
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Close() }()
	return len(w.dirs), nil
}

// watchLimitError explains a refused watch: how many watches the roots
// need, the limit, and how to raise it.
func (w *Watcher) watchLimitError(ctx context.Context) error {
	need, err := countDirs(ctx, w.opts)
	if err != nil {
		need = len(w.dirs) + 1
	}
	return watchesError(readLimits(w.opts.ProcDir), need, len(w.dirs), true)
}

// instanceLimitError explains a refused inotify instance.
func instanceLimitError(procDir string, err error) error {
	l := readLimits(cmp.Or(procDir, "/proc"))
	if l.maxInstances == 0 {
		return fmt.Errorf("%w: %w: raise %s or the open files limit (ulimit -n)", ErrWatchLimit, err, sysctlInstances)
	}
	return instancesError(l)
}

// watchesError returns nil when need more watches fit, or the error saying
// how to raise the limit; own is how many of those in use are this
// watcher's. refused says the kernel already refused one.
func watchesError(l limits, need, own int, refused bool) error {
	inUse := max(0, l.watches-own)
	if !refused && (l.maxWatches == 0 || inUse+need <= l.maxWatches) {
		return nil
	}
	var why string
	if l.maxWatches > 0 {
		why = fmt.Sprintf("watching %d folders takes as many inotify watches, but %s is %d and %d are in use", need, sysctlWatches, l.maxWatches, inUse)
	} else {
		why = fmt.Sprintf("the kernel refused more inotify watches for %d folders", need)
	}
	want := suggest(max(inUse+need, l.maxWatches+1), minWatches)
	return fmt.Errorf("%w: %s; %s, or ignore big folders in .gitignore, .dockerignore or services[].watch.ignore",
		ErrWatchLimit, why, raise(sysctlWatches, want, "inotify-watches"))
}

func instancesError(l limits) error {
	want := suggest(max(l.instances+1, l.maxInstances+1), minInstances)
	return fmt.Errorf("%w: a file watcher needs an inotify instance, but %s is %d and %d are in use; %s",
		ErrWatchLimit, sysctlInstances, l.maxInstances, l.instances, raise(sysctlInstances, want, "inotify-instances"))
}

// raise says how to set a sysctl now and after a reboot.
func raise(key string, value int, file string) string {
	return fmt.Sprintf("run `sudo sysctl -w %[1]s=%[2]d` and, to keep it after a reboot, `echo %[1]s=%[2]d | sudo tee /etc/sysctl.d/60-devctl-%[3]s.conf`", key, value, file)
}

// suggest returns a round value with room to spare: twice n up to a power
// of two, at least floor.
func suggest(n, floor int) int {
	if n <= 0 {
		return floor
	}
	return max(floor, 1<<bits.Len(uint(2*n-1)))
}

// limits are the kernel's inotify limits for this user and what the user's
// processes use; zero where unknown.
type limits struct {
	maxWatches, maxInstances int
	watches, instances       int
}

func readLimits(procDir string) limits {
	var l limits
	dir := filepath.Join(procDir, "sys", "fs", "inotify")
	l.maxWatches = readInt(filepath.Join(dir, "max_user_watches"))
	l.maxInstances = readInt(filepath.Join(dir, "max_user_instances"))
	if l.maxWatches == 0 && l.maxInstances == 0 {
		return l
	}
	l.instances, l.watches = inotifyUsage(procDir)
	return l
}

func readInt(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

// inotifyUsage counts the inotify instances and watches held by this
// user's processes, from /proc/PID/fd and /proc/PID/fdinfo. Processes it
// cannot read are skipped.
func inotifyUsage(procDir string) (instances, watches int) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return 0, 0
	}
	uid := os.Getuid()
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		pid := filepath.Join(procDir, e.Name())
		if fi, err := os.Stat(pid); err != nil || !ownedBy(fi, uid) {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(pid, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(pid, "fd", fd.Name())); err != nil || target != "anon_inode:inotify" {
				continue
			}
			instances++
			info, err := os.ReadFile(filepath.Join(pid, "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(info))
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "inotify wd:") {
					watches++
				}
			}
		}
	}
	return instances, watches
}

// nopNotifier watches nothing; countDirs uses it.
type nopNotifier struct{}

func (nopNotifier) Add(string) error              { return nil }
func (nopNotifier) Remove(string) error           { return nil }
func (nopNotifier) Events() <-chan fsnotify.Event { return nil }
func (nopNotifier) Errors() <-chan error          { return nil }
func (nopNotifier) Close() error                  { return nil }
