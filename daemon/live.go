package daemon

// attachLive lets the watchers hand batches that only touch live-synced
// paths to the live updater instead of asking for a rebuild.
func (r *runner) attachLive(ws *watchers) {}
