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
	actions chan envelope
	reads   chan func(*State)
	subs    chan subOp
	now     func() time.Time
	log     *slog.Logger

	// watchers are signalled (non-blocking) after every state change; the
	// persister and the controllers wait on them.
	watchers []chan struct{}

	mu      sync.Mutex // guards stopped and watchers
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
		actions: make(chan envelope, 1024),
		reads:   make(chan func(*State)),
		subs:    make(chan subOp),
		now:     time.Now,
		log:     log,
		done:    make(chan struct{}),
	}
	go s.loop(st)
	return s
}

// Dispatch queues an action. It never blocks on a subscriber.
func (s *Store) Dispatch(a Action) {
	select {
	case s.actions <- envelope{a: a}:
	case <-s.done:
	}
}

// envelope carries an action to the loop; a dispatcher that waits for it
// to be applied sets reply.
type envelope struct {
	a     Action
	reply chan *api.Environment
}

// DispatchSync applies a after every action dispatched before it and
// returns a copy of its environment as a left it (nil when a removed it or
// it does not exist).
func (s *Store) DispatchSync(ctx context.Context, a Action) (*api.Environment, error) {
	sa := envelope{a: a, reply: make(chan *api.Environment, 1)}
	select {
	case s.actions <- sa:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, errStoreClosed
	}
	select {
	case e := <-sa.reply:
		return e, nil
	case <-s.done:
		return nil, errStoreClosed
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

// Watch returns a channel that is signalled after state changes; several
// changes may be signalled once. Controllers call it before the store
// runs (NewStore's caller, before the first Dispatch).
func (s *Store) Watch() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers = append(s.watchers, ch)
	s.mu.Unlock()
	return ch
}

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
			seq = s.handle(st, a, seq, send)
		}
	}
}

// handle applies one action and publishes its effect; it returns the new
// event sequence number.
func (s *Store) handle(st *State, env envelope, seq uint64, send func(api.Event)) uint64 {
	a := env.a
	if env.reply != nil {
		defer func() {
			var out *api.Environment
			if e, ok := st.Envs[a.envName()]; ok {
				c := copyEnv(e)
				out = &c
			}
			env.reply <- out
		}()
	}
	now := s.now()
	if l, ok := a.(Logged); ok {
		seq++
		send(api.Event{Seq: seq, Time: now, Type: api.EventLog, Env: l.Name, Run: l.Run, Step: l.Step,
			Service: l.Service, Level: l.Level, Source: l.Source, Message: l.Message})
		return seq
	}
	if !s.apply(st, a, now) {
		return seq
	}
	seq++
	if e, ok := st.Envs[a.envName()]; ok {
		c := copyEnv(e)
		send(api.Event{Seq: seq, Time: now, Type: api.EventEnv, Env: c.Name, Environment: &c})
	} else {
		send(api.Event{Seq: seq, Time: now, Type: api.EventDeleted, Env: a.envName()})
	}
	s.mu.Lock()
	for _, w := range s.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return seq
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
