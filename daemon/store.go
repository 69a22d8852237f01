package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// Store owns the daemon's State. One goroutine (Run) applies dispatched
// actions through reduce and hands the resulting events to subscribers;
// controllers never touch State directly.
type Store struct {
	actions chan Action
	reads   chan func(*State)
	subs    chan subOp
	now     func() time.Time
	log     *slog.Logger

	// changed is signalled (non-blocking) after every state change; the
	// persister waits on it.
	changed chan struct{}

	mu      sync.Mutex // guards stopped
	stopped bool
	done    chan struct{}
}

type subOp struct {
	add    *subscriber
	remove *subscriber
}

type subscriber struct {
	env string // "" = all environments
	ch  chan api.Event
}

// NewStore returns a store holding st (or an empty state).
func NewStore(st *State, log *slog.Logger) *Store {
	if st == nil {
		st = newState()
	}
	s := &Store{
		actions: make(chan Action, 1024),
		reads:   make(chan func(*State)),
		subs:    make(chan subOp),
		now:     time.Now,
		log:     log,
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go s.loop(st)
	return s
}

// Dispatch queues an action. It never blocks on a subscriber.
func (s *Store) Dispatch(a Action) {
	select {
	case s.actions <- a:
	case <-s.done:
	}
}

// Read runs f on the state inside the loop and waits for it. f must not
// block or keep references to the state.
func (s *Store) Read(ctx context.Context, f func(*State)) error {
	ran := make(chan struct{})
	select {
	case s.reads <- func(st *State) { f(st); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errStoreClosed
	}
	select {
	case <-ran:
		return nil
	case <-s.done:
		return errStoreClosed
	}
}

// Get returns a copy of one environment.
func (s *Store) Get(ctx context.Context, name string) (api.Environment, bool) {
	var (
		e  api.Environment
		ok bool
	)
	_ = s.Read(ctx, func(st *State) {
		if p, found := st.Envs[name]; found {
			e, ok = copyEnv(p), true
		}
	})
	return e, ok
}

// List returns copies of all environments.
func (s *Store) List(ctx context.Context) []api.Environment {
	var out []api.Environment
	_ = s.Read(ctx, func(st *State) { out = st.List() })
	return out
}

// Subscribe returns a channel of events for env ("" for all), starting with
// a snapshot of each matching environment, and a func to end it. A
// subscriber that falls more than the buffer behind is dropped (its channel
// closed) so it cannot stall the daemon; it can subscribe again.
func (s *Store) Subscribe(env string) (<-chan api.Event, func()) {
	sub := &subscriber{env: env, ch: make(chan api.Event, 512)}
	select {
	case s.subs <- subOp{add: sub}:
	case <-s.done:
		close(sub.ch)
		return sub.ch, func() {}
	}
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			select {
			case s.subs <- subOp{remove: sub}:
			case <-s.done:
			}
		})
	}
}

// Changed is signalled after state changes; used by the persister.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// Close stops the loop and closes every subscription.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.done)
	}
}

func (s *Store) loop(st *State) {
	subs := map[*subscriber]struct{}{}
	var seq uint64
	defer func() {
		for sub := range subs {
			close(sub.ch)
		}
	}()
	send := func(ev api.Event) {
		for sub := range subs {
			if sub.env != "" && sub.env != ev.Env {
				continue
			}
			select {
			case sub.ch <- ev:
			default:
				s.log.Warn("dropping slow event subscriber", "env", sub.env)
				delete(subs, sub)
				close(sub.ch)
			}
		}
	}
	for {
		select {
		case <-s.done:
			return
		case f := <-s.reads:
			f(st)
		case op := <-s.subs:
			if op.add != nil {
				subs[op.add] = struct{}{}
				for _, e := range st.List() {
					if op.add.env != "" && op.add.env != e.Name {
						continue
					}
					seq++
					e := e
					op.add.ch <- api.Event{Seq: seq, Time: s.now(), Type: api.EventSnapshot, Env: e.Name, Environment: &e}
				}
			}
			if op.remove != nil {
				if _, ok := subs[op.remove]; ok {
					delete(subs, op.remove)
					close(op.remove.ch)
				}
			}
		case a := <-s.actions:
			now := s.now()
			if l, ok := a.(LogLine); ok {
				seq++
				send(api.Event{Seq: seq, Time: now, Type: api.EventLog, Env: l.Name, Line: l.Line})
				continue
			}
			if !s.apply(st, a, now) {
				continue
			}
			seq++
			if e, ok := st.Envs[a.envName()]; ok {
				c := copyEnv(e)
				send(api.Event{Seq: seq, Time: now, Type: api.EventEnv, Env: c.Name, Environment: &c})
			} else {
				send(api.Event{Seq: seq, Time: now, Type: api.EventDeleted, Env: a.envName()})
			}
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	}
}

// apply runs the reducer, turning a panic into a logged no-op so one bad
// action cannot take the daemon down.
func (s *Store) apply(st *State, a Action, now time.Time) (changed bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("reducer panic", "action", fmt.Sprintf("%T", a), "panic", r, "stack", string(debug.Stack()))
			changed = false
		}
	}()
	return reduce(st, a, now)
}
