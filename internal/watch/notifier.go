package watch

import "github.com/fsnotify/fsnotify"

// Notifier is the part of an fsnotify watcher a Watcher uses. It watches
// single directories (not trees): Add and Remove name absolute directory
// paths, and events name absolute paths inside them. NewFSNotifier returns
// the real one; tests use a FakeNotifier.
type Notifier interface {
	Add(dir string) error
	Remove(dir string) error
	Events() <-chan fsnotify.Event
	Errors() <-chan error
	Close() error
}

// NewFSNotifier returns a Notifier backed by fsnotify (inotify on Linux).
func NewFSNotifier() (Notifier, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return fsNotifier{w}, nil
}

type fsNotifier struct{ w *fsnotify.Watcher }

func (n fsNotifier) Add(dir string) error          { return n.w.Add(dir) }
func (n fsNotifier) Remove(dir string) error       { return n.w.Remove(dir) }
func (n fsNotifier) Events() <-chan fsnotify.Event { return n.w.Events }
func (n fsNotifier) Errors() <-chan error          { return n.w.Errors }
func (n fsNotifier) Close() error                  { return n.w.Close() }
