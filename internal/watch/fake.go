package watch

import (
	"slices"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// FakeNotifier is a Notifier for tests: it records the watched directories
// and delivers the events and errors a test sends. Its channels are
// unbuffered and Send, SendError and Sync return only once the Watcher has
// handled everything sent before them, so a test that steps a fake clock
// can then look at Batches without sleeping.
type FakeNotifier struct {
	// AddError, when set, is returned by every Add, such as
	// syscall.ENOSPC to play an exhausted inotify watch limit.
	AddError error

	mu      sync.Mutex
	watched map[string]bool
	events  chan fsnotify.Event
	errors  chan error
	done    chan struct{}
	closed  sync.Once
}

var _ Notifier = (*FakeNotifier)(nil)

// NewFakeNotifier returns a FakeNotifier watching nothing.
func NewFakeNotifier() *FakeNotifier {
	return &FakeNotifier{
		watched: map[string]bool{},
		events:  make(chan fsnotify.Event),
		errors:  make(chan error),
		done:    make(chan struct{}),
	}
}

// Add records dir as watched, or fails with AddError.
func (f *FakeNotifier) Add(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.AddError != nil {
		return f.AddError
	}
	f.watched[dir] = true
	return nil
}

// Remove forgets dir; like fsnotify it fails for a directory not watched.
func (f *FakeNotifier) Remove(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.watched[dir] {
		return fsnotify.ErrNonExistentWatch
	}
	delete(f.watched, dir)
	return nil
}

// Watched returns the watched directories, sorted.
func (f *FakeNotifier) Watched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	dirs := make([]string, 0, len(f.watched))
	for d := range f.watched {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return dirs
}

// Events returns the channel Send writes to.
func (f *FakeNotifier) Events() <-chan fsnotify.Event { return f.events }

// Errors returns the channel SendError writes to.
func (f *FakeNotifier) Errors() <-chan error { return f.errors }

// Close makes Send, SendError and Sync return at once. The channels stay
// open: a Watcher stops on its own Close or context.
func (f *FakeNotifier) Close() error {
	f.closed.Do(func() { close(f.done) })
	return nil
}

// Send delivers ev and returns once the Watcher has handled it.
func (f *FakeNotifier) Send(ev fsnotify.Event) {
	if f.send(ev) {
		f.send(fsnotify.Event{})
	}
}

// SendError delivers err and returns once the Watcher has handled it.
func (f *FakeNotifier) SendError(err error) {
	select {
	case f.errors <- err:
		f.send(fsnotify.Event{})
	case <-f.done:
	}
}

// Sync returns once the Watcher has handled everything sent before, and
// has seen the time of its clock: a batch whose quiet window ended is then
// waiting on Batches.
func (f *FakeNotifier) Sync() {
	f.Send(fsnotify.Event{})
}

// send hands ev to the Watcher. An event without a name is a barrier: the
// Watcher skips it, so its receipt means the events before were handled.
func (f *FakeNotifier) send(ev fsnotify.Event) bool {
	select {
	case f.events <- ev:
		return true
	case <-f.done:
		return false
	}
}
