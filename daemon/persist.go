package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/devctl/devctl/internal/api"
)

const stateFileVersion = 2

type stateFile struct {
	Version int    `json:"version"`
	State   *State `json:"state"`
}

// LoadState reads the state file at path. A missing file is an empty state;
// a corrupt one is moved aside (never deleted) and reported.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.State == nil || f.Version != stateFileVersion {
		aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
		_ = os.Rename(path, aside)
		if err == nil {
			err = fmt.Errorf("unsupported version %d", f.Version)
		}
		return newState(), fmt.Errorf("state file %s is unreadable (%w); kept it as %s and starting empty: environments are rediscovered from the clusters", path, err, aside)
	}
	if f.State.Envs == nil {
		f.State.Envs = newState().Envs
	}
	return f.State, nil
}

// SaveState writes st to path atomically: a crash leaves the old file or the
// new one, never a torn one.
func SaveState(path string, st *State) error {
	b, err := json.MarshalIndent(stateFile{Version: stateFileVersion, State: st}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*.json")
	if err != nil {
		return saveError(path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return saveError(path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return saveError(path, err)
	}
	if err := tmp.Close(); err != nil {
		return saveError(path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return saveError(path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return saveError(path, err)
	}
	return nil
}

// saveError says why the state file could not be written and what to do;
// the file on disk is the last one saved.
func saveError(path string, err error) error {
	dir := filepath.Dir(path)
	hint := "check that " + dir + " is writable and its disk has space"
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		hint = "the disk of " + dir + " is full: free some space"
	case errors.Is(err, syscall.EROFS):
		hint = dir + " is on a read-only file system: remount it read-write or set DEVCTL_STATE_DIR to a writable folder"
	case errors.Is(err, fs.ErrPermission):
		hint = dir + " is not writable: fix its permissions (or its immutable attribute, chattr -i) or set DEVCTL_STATE_DIR to a writable folder"
	}
	return fmt.Errorf("save state %s: %w; %s (the last saved state is kept and the daemon keeps trying)", path, err, hint)
}

// persistRetry is how soon the daemon tries again to save a state file it
// could not save, when nothing else changes (the disk may have been freed).
const persistRetry = 5 * time.Second

// persist writes the state file after changes, at most every interval,
// until ctx ends; then it writes once more. A failed save leaves the old
// file as it was, is reported to report (nil once a save succeeds again)
// and is retried every retry until one succeeds.
func persist(ctx context.Context, s *Store, changes <-chan struct{}, path string, interval, retry time.Duration, log *slog.Logger, report func(error)) {
	failing := false
	save := func() {
		var snap State
		if err := s.Read(context.Background(), func(st *State) {
			snap.LastRun = st.LastRun
			snap.Envs = make(map[string]*api.Environment, len(st.Envs))
			for k, e := range st.Envs {
				c := copyEnv(e)
				snap.Envs[k] = &c
			}
		}); err != nil {
			return
		}
		err := SaveState(path, &snap)
		switch {
		case err != nil && !failing:
			log.Error("persist state", "err", err)
		case err == nil && failing:
			log.Info("persist state: saved again", "path", path)
		}
		if err != nil || failing {
			report(err)
		}
		failing = err != nil
	}
	for {
		var again <-chan time.Time
		if failing {
			again = time.After(retry)
		}
		select {
		case <-ctx.Done():
			save()
			return
		case <-again:
			save()
		case <-changes:
			save()
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				save()
				return
			}
		}
	}
}
