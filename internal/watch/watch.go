package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/moby/patternmatcher"
	"k8s.io/utils/clock"
)

// Default coalescing windows.
const (
	DefaultQuiet = 200 * time.Millisecond
	DefaultCap   = 10 * time.Second
	// DefaultSingle is the quiet window the daemon gives a batch of one
	// file (an editor's save): the second file of a burst (a checkout, a
	// generator) arrives within microseconds and brings back Quiet.
	DefaultSingle = 50 * time.Millisecond
)

// Structured log keys.
const (
	logPath  = "path"
	logErr   = "err"
	logDirs  = "dirs"
	logPaths = "paths"
)

// Root is a folder to watch, recursively.
type Root struct {
	// Name identifies the root in a Batch: a service name, or "project"
	// for the folder holding devctl.yaml.
	Name string
	// Dir is the folder; relative paths are taken from the working
	// directory.
	Dir string
	// Dockerignore applies Dir/.dockerignore, as for a build context. It is
	// re-read when it changes; the file itself is always reported, as the
	// image build always sends it.
	Dockerignore bool
	// Ignore holds more .dockerignore-style patterns relative to Dir
	// (devctl.yaml's services[].watch.ignore). They come after
	// .dockerignore's, so "!Dockerfile" here keeps a Dockerfile that
	// .dockerignore excludes.
	Ignore []string
}

// Options configure a Watcher. Only Roots is required.
type Options struct {
	Roots []Root
	// Quiet is how long no change must be seen before a batch is handed
	// out; DefaultQuiet when zero.
	Quiet time.Duration
	// Cap is the longest a batch waits after its first change; DefaultCap
	// when zero. It is at least Quiet.
	Cap time.Duration
	// Single, when set and shorter than Quiet, is the quiet window of a
	// batch that holds one changed file: a save is handed out sooner, and
	// a second file in the batch makes its window Quiet again.
	Single time.Duration
	// Clock is the real clock when nil.
	Clock clock.Clock
	// NewNotifier creates the fsnotify watcher; NewFSNotifier when nil.
	NewNotifier func() (Notifier, error)
	// Logger receives debug lines and warnings; discarded when nil.
	Logger *slog.Logger
	// ProcDir is where procfs is mounted, read by CheckLimits and for the
	// error when a limit is hit; "/proc" when empty.
	ProcDir string
}

// Batch is a coalesced set of changes.
type Batch struct {
	// Changes maps a root's name to the paths that changed under it:
	// relative to its Dir, slash-separated, sorted, each once. A path under
	// nested roots is listed under each of them; a root with no change is
	// absent.
	Changes map[string][]string
	// First and Last are when the first and the last change of the batch
	// were seen: a rebuild's latency is measured from First.
	First, Last time.Time
	// Overflow reports that the kernel dropped events: Changes is
	// incomplete and every root must be treated as changed.
	Overflow bool
}

// Changed reports whether the batch asks the named root to be rebuilt.
func (b Batch) Changed(root string) bool {
	return b.Overflow || len(b.Changes[root]) > 0
}

// Watcher watches roots and hands out batches of changes. Create it with
// New, run it with Run, read Batches.
type Watcher struct {
	opts    Options
	roots   []root
	quiet   time.Duration
	maxWait time.Duration
	clock   clock.Clock
	log     *slog.Logger
	n       Notifier

	// Owned by New, then by Run's goroutine.
	dirs map[string]*dirState
	gen  int // sync pass, see syncAll

	out       chan Batch
	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	running   atomic.Bool

	mu     sync.Mutex
	paused bool
}

type root struct {
	name         string
	dir          string // absolute, clean
	dockerignore bool
	extra        []string
	docker       *patternmatcher.PatternMatcher // nil without patterns
}

// New checks the options, starts a notifier and watches every folder the
// roots see. On success the caller owns the Watcher and must Run or Close
// it. When the kernel refuses more watches the error wraps ErrWatchLimit and
// says which limit to raise.
func New(ctx context.Context, o Options) (*Watcher, error) {
	w, err := newWatcher(o)
	if err != nil {
		return nil, err
	}
	newNotifier := o.NewNotifier
	if newNotifier == nil {
		newNotifier = NewFSNotifier
	}
	w.n, err = newNotifier()
	if errors.Is(err, syscall.EMFILE) {
		return nil, instanceLimitError(w.opts.ProcDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("start file watcher: %w", err)
	}
	if err := w.syncAll(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	w.log.Debug("watching", logDirs, len(w.dirs))
	return w, nil
}

func newWatcher(o Options) (*Watcher, error) {
	if len(o.Roots) == 0 {
		return nil, errors.New("watch: no folder to watch")
	}
	if o.Quiet < 0 || o.Cap < 0 || o.Single < 0 {
		return nil, fmt.Errorf("watch: negative quiet window %v or cap %v", o.Quiet, o.Cap)
	}
	if o.Quiet == 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Cap == 0 {
		o.Cap = max(DefaultCap, o.Quiet)
	}
	if o.Cap < o.Quiet {
		return nil, fmt.Errorf("watch: cap %v is shorter than the quiet window %v", o.Cap, o.Quiet)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	w := &Watcher{
		opts:    o,
		quiet:   o.Quiet,
		maxWait: o.Cap,
		clock:   o.Clock,
		log:     o.Logger,
		dirs:    map[string]*dirState{},
		out:     make(chan Batch),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	seen := map[string]bool{}
	for _, r := range o.Roots {
		if r.Name == "" || seen[r.Name] {
			return nil, fmt.Errorf("watch: root names must be set and unique, got %q twice or empty", r.Name)
		}
		seen[r.Name] = true
		dir, err := filepath.Abs(r.Dir)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", r.Name, err)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("watch %s: %s is not a folder", r.Name, dir)
		}
		pm, err := dockerMatcher(dir, r.Dockerignore, r.Ignore)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", r.Name, err)
		}
		w.roots = append(w.roots, root{name: r.Name, dir: dir, dockerignore: r.Dockerignore, extra: r.Ignore, docker: pm})
	}
	return w, nil
}

// Batches returns the channel batches are handed out on. It is closed when
// Run returns. A batch not yet received keeps growing with later changes.
func (w *Watcher) Batches() <-chan Batch { return w.out }

// Pause holds batches back: changes are still recorded and coalesced, and
// everything held is handed out as one batch on Resume. Holding rather than
// dropping means no edit is lost while, say, the environment sleeps; to
// keep a build's own output from triggering rebuilds, ignore the output
// path instead. A batch already handed out is not recalled.
func (w *Watcher) Pause() { w.setPaused(true) }

// Resume hands out what was held since Pause as one batch.
func (w *Watcher) Resume() { w.setPaused(false) }

func (w *Watcher) setPaused(p bool) {
	w.mu.Lock()
	w.paused = p
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) isPaused() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.paused
}

// Close stops the notifier and makes Run return. It is safe to call more
// than once and concurrently with Run.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		if w.n != nil {
			w.closeErr = w.n.Close()
		}
	})
	return w.closeErr
}

func (w *Watcher) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// state is Run's coalescing state.
type state struct {
	pending  *changes // being coalesced
	deadline time.Time
	timer    clock.Timer
	ready    *changes // waiting for a receiver
	next     Batch    // ready as a Batch
	nextOK   bool
	held     *changes // while paused
}

// Run watches until ctx is done or Close is called, then closes Batches
// and the notifier. It returns nil then, and an error when watching cannot
// go on (the inotify limit is hit, the notifier stops). Call it once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice")
	}
	defer close(w.out)
	defer func() { _ = w.Close() }()
	var s state
	defer func() {
		if s.timer != nil {
			s.timer.Stop()
		}
	}()
	for {
		w.settle(&s, w.clock.Now())
		var out chan<- Batch
		if s.ready != nil {
			if !s.nextOK {
				s.next, s.nextOK = s.ready.batch(w.roots), true
			}
			out = w.out
			if len(s.next.Changes) == 0 && !s.next.Overflow {
				// Only files made and gone again: nothing changed.
				s.ready, s.next, s.nextOK, out = nil, Batch{}, false, nil
			}
		}
		var timerC <-chan time.Time
		if s.timer != nil {
			timerC = s.timer.C()
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-w.done:
			return nil
		case ev, ok := <-w.n.Events():
			if !ok {
				return w.stopped()
			}
			now := w.clock.Now()
			w.settle(&s, now) // a change after the quiet window starts the next batch
			err = w.handle(ctx, &s, ev, now)
		case e, ok := <-w.n.Errors():
			if !ok {
				return w.stopped()
			}
			err = w.handleError(ctx, &s, e)
		case <-timerC:
		case <-w.wake:
		case out <- s.next:
			s.ready, s.next, s.nextOK = nil, Batch{}, false
		}
		if err != nil {
			if w.closed() || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (w *Watcher) stopped() error {
	if w.closed() {
		return nil
	}
	return errors.New("watch: the file notifier stopped")
}

// settle moves a batch whose window ended to ready (or held, while paused)
// and moves batches between ready and held as Pause and Resume say.
func (w *Watcher) settle(s *state, now time.Time) {
	if s.pending != nil && !now.Before(s.deadline) {
		s.timer.Stop()
		s.timer = nil
		s.held = s.held.merge(s.pending)
		s.pending = nil
	}
	if w.isPaused() {
		if s.ready != nil {
			s.held = s.held.merge(s.ready)
			s.ready, s.next, s.nextOK = nil, Batch{}, false
		}
		return
	}
	if s.held != nil {
		s.ready = s.ready.merge(s.held)
		s.held, s.nextOK = nil, false
		w.log.Debug("batch ready", logPaths, s.ready.len(), "overflow", s.ready.overflow)
	}
}

// touch records that a change was seen at now and moves the deadline of
// the pending batch.
func (w *Watcher) touch(s *state, now time.Time) {
	if s.pending == nil {
		s.pending = newChanges(len(w.roots), now)
	}
	s.pending.last = now
	quiet := w.quiet
	if single := w.opts.Single; single > 0 && single < quiet && !s.pending.overflow && s.pending.oneFile(w.roots) {
		quiet = single
	}
	s.deadline = now.Add(quiet)
	if limit := s.pending.first.Add(w.maxWait); limit.Before(s.deadline) {
		s.deadline = limit
	}
	if s.timer == nil {
		s.timer = w.clock.NewTimer(s.deadline.Sub(now))
		return
	}
	// Drop a tick not yet read: fake clocks keep it, and block on the next
	// one while it is there.
	if !s.timer.Stop() {
		select {
		case <-s.timer.C():
		default:
		}
	}
	s.timer.Reset(s.deadline.Sub(now))
}

// handleError marks the pending batch as overflowed and watches the roots
// anew when the kernel dropped events; other errors are logged.
func (w *Watcher) handleError(ctx context.Context, s *state, err error) error {
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		w.log.Warn("file watcher", logErr, err)
		return nil
	}
	w.log.Warn("file events were dropped: reporting every root as changed", logErr, err)
	now := w.clock.Now()
	w.touch(s, now)
	s.pending.overflow = true
	// Folders created meanwhile may have gone unseen.
	return w.syncAll(ctx)
}

// changes is a set of changed paths per root.
type changes struct {
	paths []map[string]struct{} // by root index
	// born holds, by root, the paths whose first event in the batch was
	// their creation, with whether their last event removed or renamed
	// them away: a file made and gone within one batch (an editor's or
	// `sed -i`'s temporary file, renamed over the one saved) changed
	// nothing and is left out.
	born        []map[string]bool
	first, last time.Time
	overflow    bool
}

func newChanges(roots int, now time.Time) *changes {
	return &changes{paths: make([]map[string]struct{}, roots), born: make([]map[string]bool, roots), first: now, last: now}
}

func (c *changes) add(r int, rel string) {
	if c.paths[r] == nil {
		c.paths[r] = map[string]struct{}{}
	}
	c.paths[r][rel] = struct{}{}
}

func (c *changes) has(r int, rel string) bool {
	_, ok := c.paths[r][rel]
	return ok
}

// saw records the event op on rel, just added to the batch; first says it
// is rel's first event in the batch.
func (c *changes) saw(r int, rel string, op fsnotify.Op, first bool) {
	gone := op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename)
	if _, ok := c.born[r][rel]; ok {
		c.born[r][rel] = gone
		return
	}
	if first && op.Has(fsnotify.Create) && !gone {
		if c.born[r] == nil {
			c.born[r] = map[string]bool{}
		}
		c.born[r][rel] = false
	}
}

// transient reports whether rel was made and is gone again in the batch.
func (c *changes) transient(r int, rel string) bool {
	return c.born[r][rel]
}

func (c *changes) len() int {
	n := 0
	for _, set := range c.paths {
		n += len(set)
	}
	return n
}

// oneFile reports whether c holds a single file, which roots that overlap
// (a project and a service in its folder) may each report.
func (c *changes) oneFile(roots []root) bool {
	file := ""
	for r, set := range c.paths {
		for p := range set {
			if c.transient(r, p) {
				continue
			}
			abs := filepath.Join(roots[r].dir, filepath.FromSlash(p))
			if file != "" && abs != file {
				return false
			}
			file = abs
		}
	}
	return file != ""
}

// merge adds o to c and returns the result; c may be nil.
func (c *changes) merge(o *changes) *changes {
	if c == nil {
		return o
	}
	if o == nil {
		return c
	}
	for r, set := range o.paths {
		for p := range set {
			gone, born := o.born[r][p]
			switch _, bornBefore := c.born[r][p]; {
			case bornBefore && born:
				c.born[r][p] = gone // made in c, gone or back in o
			case bornBefore:
				c.born[r][p] = false // changed again in o: there
			case born && !c.has(r, p):
				if c.born[r] == nil {
					c.born[r] = map[string]bool{}
				}
				c.born[r][p] = gone
			}
			c.add(r, p)
		}
	}
	if o.first.Before(c.first) {
		c.first = o.first
	}
	if o.last.After(c.last) {
		c.last = o.last
	}
	c.overflow = c.overflow || o.overflow
	return c
}

func (c *changes) batch(roots []root) Batch {
	b := Batch{Changes: map[string][]string{}, First: c.first, Last: c.last, Overflow: c.overflow}
	for r, set := range c.paths {
		if len(set) == 0 {
			continue
		}
		ps := make([]string, 0, len(set))
		for p := range set {
			if !c.transient(r, p) {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			continue
		}
		slices.Sort(ps)
		b.Changes[roots[r].name] = ps
	}
	return b
}
