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
		return fmt.Errorf("save state: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// persist writes the state file after changes, at most every interval,
// until ctx ends; then it writes once more.
func persist(ctx context.Context, s *Store, changes <-chan struct{}, path string, interval time.Duration, log *slog.Logger) {
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
		if err := SaveState(path, &snap); err != nil {
			log.Error("persist state", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			save()
			return
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
