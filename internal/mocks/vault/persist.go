package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// state is the state file's content.
type state struct {
	Mounts map[string]*mount `json:"mounts"`
}

// load reads the state file, if there is one. Mounts that are not
// configured are ignored.
func (s *Server) load() error {
	b, err := os.ReadFile(s.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("vault: state file %s is not valid (delete it to start empty): %w", s.stateFile, err)
	}
	for name, m := range st.Mounts {
		if _, ok := s.mounts[name]; ok && m != nil {
			if m.Secrets == nil {
				m.Secrets = map[string]*secret{}
			}
			s.mounts[name] = m
		}
	}
	return nil
}

// saveLocked writes the state file atomically: a temporary file in the same
// directory, synced, then renamed over the old one. s.mu must be held.
func (s *Server) saveLocked() error {
	if s.stateFile == "" {
		return nil
	}
	b, err := json.Marshal(state{Mounts: s.mounts})
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.stateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".vault-state-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // a no-op after the rename
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.stateFile)
}

// Seed holds secrets to write at start: a path ("<mount>/<path>", or a path
// in the first configured mount) mapped to the secret's keys and values.
//
//	secret/hello/db:
//	  username: hello
//	  password: change-me
//	hello/api: {token: abc}
type Seed map[string]map[string]any

// LoadSeed reads a Seed from a YAML or JSON file.
func LoadSeed(path string) (Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault: read seed: %w", err)
	}
	var seed Seed
	if err := yaml.Unmarshal(b, &seed); err != nil {
		return nil, fmt.Errorf("vault: seed %s: want a map of path to a map of keys: %w", path, err)
	}
	return seed, nil
}

func (s *Server) applySeed(seed Seed) error {
	if len(seed) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, p := range slices.Sorted(maps.Keys(seed)) {
		name, path := s.resolve(p)
		if path == "" || strings.HasSuffix(path, "/") {
			return fmt.Errorf("vault: seed path %q: want <mount>/<path> or <path>", p)
		}
		data := clone(seed[p])
		if data == nil {
			data = map[string]any{}
		}
		m := s.mounts[name]
		sec := m.Secrets[path]
		if sec != nil {
			if v := sec.Versions[sec.CurrentVersion]; v != nil && v.alive() && reflect.DeepEqual(v.Data, data) {
				continue
			}
		} else {
			sec = &secret{Versions: map[int]*version{}, Created: s.now().UTC()}
			m.Secrets[path] = sec
		}
		s.addVersion(sec, data)
		changed = true
	}
	if !changed {
		return nil
	}
	if err := s.saveLocked(); err != nil {
		return fmt.Errorf("vault: save state: %w", err)
	}
	return nil
}

// resolve splits a seed path into a mount and a path in it.
func (s *Server) resolve(p string) (mountName, path string) {
	p = strings.TrimPrefix(p, "/")
	if first, rest, ok := strings.Cut(p, "/"); ok {
		if _, known := s.mounts[first]; known {
			return first, strings.TrimPrefix(rest, "data/")
		}
	}
	return s.defaultMount(), p
}

func (s *Server) defaultMount() string {
	if _, ok := s.mounts[DefaultMount]; ok {
		return DefaultMount
	}
	return s.mountNames()[0]
}
