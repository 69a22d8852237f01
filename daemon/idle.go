package daemon

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"
)

// idleAfter is how long the daemon waits after its last run ended before it
// gives memory back.
const idleAfter = 10 * time.Second

// trimWhenIdle gives memory back to the system once no run has been under
// way for after: the heap that builds, deploys and kind left behind is
// returned (debug.FreeOSMemory), and the pages of devctl's own binary that
// start-up and the runs read are unmapped (releaseBinaryPages): they stay
// in the page cache, and what the idle daemon runs maps back the little it
// needs. It trims once per busy spell and does nothing while idle.
func trimWhenIdle(ctx context.Context, s *Store, changes <-chan struct{}, after time.Duration, trim func()) {
	timer := time.NewTimer(after)
	defer timer.Stop()
	busy := func() bool {
		for _, e := range s.List(ctx) {
			if e.Status.Run.Active() {
				return true
			}
		}
		return false
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			// Any change (a run starting, a step ending) postpones the
			// trim; a run under way cancels it until the next change.
			timer.Stop()
			if !busy() {
				timer.Reset(after)
			}
		case <-timer.C:
			if busy() {
				continue
			}
			trim()
		}
	}
}

// trim gives the heap and the binary's pages back.
func trim(log *slog.Logger) {
	debug.FreeOSMemory()
	released, err := releaseBinaryPages()
	if err != nil {
		log.Debug("release binary pages", "err", err)
	}
	log.Debug("idle: memory given back", "binaryPages", released)
}
