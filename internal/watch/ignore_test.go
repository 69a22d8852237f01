package watch

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// TestIgnore checks, for each tree, which folders are watched and which
// changed paths each root reports.
func TestIgnore(t *testing.T) {
	t.Parallel()
	type probe struct {
		path string
		want map[string][]string // nil: ignored by every root
	}
	app := func(p ...string) map[string][]string { return map[string][]string{"app": p} }
	tests := []struct {
		name    string
		files   map[string]string
		roots   []Root
		watched []string
		probes  []probe
	}{{
		name: "gitignore",
		files: map[string]string{
			".gitignore": "*.log\n!keep.log\nbuild/\n/tmp\ndocs/**/*.md\n**/secret.txt\n# comment\n\n",
			"build/a.go": "", "src/build": "", "tmp/x": "", "sub/tmp/x": "", "docs/a/b/c.md": "",
		},
		watched: []string{".", "docs", "docs/a", "docs/a/b", "src", "sub", "sub/tmp"},
		probes: []probe{
			{"app.log", nil},
			{"src/deep.log", nil},
			{"keep.log", app("keep.log")},   // negation
			{"src/build", app("src/build")}, // build/ matches folders only
			{"sub/tmp/x", app("sub/tmp/x")}, // /tmp is anchored
			{"docs/a/b/c.md", nil},          // **
			{"docs/a/b/c.txt", app("docs/a/b/c.txt")},
			{"src/secret.txt", nil},
			{".gitignore", app(".gitignore")},
		},
	}, {
		name: "nested gitignore",
		files: map[string]string{
			".gitignore":     "*.tmp\nvendor/\n!vendor/keep.go\n",
			"sub/.gitignore": "!important.tmp\nout/\n",
			"sub/out/x":      "", "out/x": "", "vendor/keep.go": "", "other/": "",
		},
		watched: []string{".", "other", "out", "sub"},
		probes: []probe{
			{"important.tmp", nil},
			{"sub/important.tmp", app("sub/important.tmp")}, // re-included below sub only
			{"sub/other.tmp", nil},
			{"other/important.tmp", nil},
			{"out/x", app("out/x")}, // sub's out/ applies below sub
		},
	}, {
		name: "always .git",
		files: map[string]string{
			".git/objects/aa/": "", "sub/.git": "gitdir: ../.git/modules/sub", "sub/x": "",
		},
		watched: []string{".", "sub"},
		probes: []probe{
			{".git", nil},
			{"sub/.git", nil},
			{"sub/x", app("sub/x")},
		},
	}, {
		name: "dockerignore",
		files: map[string]string{
			".dockerignore":     "node_modules\n*.md\n!README.md\nlogs\n!logs/keep\nDockerfile\n",
			"node_modules/a/b/": "", "sub/node_modules/": "", "logs/": "",
		},
		roots:   []Root{{Name: "app", Dir: ".", Dockerignore: true, Ignore: []string{"bin/", "**/*.tmp", "!Dockerfile"}}},
		watched: []string{".", "logs", "sub", "sub/node_modules"},
		probes: []probe{
			{"a.md", nil},
			{"sub/a.md", app("sub/a.md")}, // .dockerignore patterns are anchored
			{"README.md", app("README.md")},
			{"logs/x", nil},
			{"logs/keep", app("logs/keep")},
			{".dockerignore", app(".dockerignore")},
			{"Dockerfile", app("Dockerfile")}, // re-included by Ignore
			{"bin", nil},
			{"sub/x.tmp", nil},
		},
	}, {
		name: "dockerignore only for build contexts",
		files: map[string]string{
			".dockerignore": "*\n", "src/": "",
		},
		roots:   []Root{{Name: "app", Dir: "."}},
		watched: []string{".", "src"},
		probes:  []probe{{"src/main.go", app("src/main.go")}},
	}, {
		name: "nested roots",
		files: map[string]string{
			".gitignore":        "charts/*/tmp/\n",
			"svc/.dockerignore": "tmp\n",
			"svc/tmp/":          "", "svc/src/": "", "charts/app/tmp/": "", "charts/app/templates/": "",
		},
		roots: []Root{
			{Name: "project", Dir: "."},
			{Name: "svc", Dir: "svc", Dockerignore: true},
			{Name: "chart", Dir: "charts/app"},
		},
		watched: []string{".", "charts", "charts/app", "charts/app/templates", "svc", "svc/src", "svc/tmp"},
		probes: []probe{
			{"devctl.yaml", map[string][]string{"project": {"devctl.yaml"}}},
			{"svc/src/main.go", map[string][]string{"project": {"svc/src/main.go"}, "svc": {"src/main.go"}}},
			{"svc/tmp/x", map[string][]string{"project": {"svc/tmp/x"}}},
			{"charts/app/templates/d.yaml", map[string][]string{"project": {"charts/app/templates/d.yaml"}, "chart": {"templates/d.yaml"}}},
		},
	}, {
		name: "root in an ignored folder",
		files: map[string]string{
			".gitignore":         "gen/\n*.o\n",
			"gen/api/.gitignore": "out/\n",
			"gen/api/out/":       "", "gen/api/src/": "", "gen/other/": "",
		},
		roots:   []Root{{Name: "project", Dir: "."}, {Name: "api", Dir: "gen/api"}},
		watched: []string{".", "gen", "gen/api", "gen/api/src"},
		probes: []probe{
			{"gen/x", nil},
			{"gen/api/src/main.go", map[string][]string{"api": {"src/main.go"}}},
			{"gen/api/main.o", nil},
		},
	}, {
		name: "same folder, two roots",
		files: map[string]string{
			".dockerignore": "charts\ndevctl.yaml\n", "charts/": "",
		},
		roots:   []Root{{Name: "project", Dir: "."}, {Name: "svc", Dir: ".", Dockerignore: true}},
		watched: []string{".", "charts"},
		probes: []probe{
			{"devctl.yaml", map[string][]string{"project": {"devctl.yaml"}}},
			{"charts/x", map[string][]string{"project": {"charts/x"}}},
			{"main.go", map[string][]string{"project": {"main.go"}, "svc": {"main.go"}}},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			h := start(t, dir, Options{Roots: tc.roots, Quiet: quiet, Cap: limit})
			if got := h.watched(); !reflect.DeepEqual(got, tc.watched) {
				t.Errorf("watched %v, want %v", got, tc.watched)
			}
			for _, p := range tc.probes {
				h.send(fsnotify.Write, p.path)
				h.step(quiet)
				if p.want == nil {
					h.none()
					continue
				}
				if b := h.next(); !reflect.DeepEqual(b.Changes, p.want) {
					t.Errorf("change to %s reported as %v, want %v", p.path, b.Changes, p.want)
				}
			}
		})
	}
}

// A .gitignore above the root, up to the repository's top, applies; one
// above the repository does not.
func TestGitignoreAboveRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".gitignore":                "*.go\n",
		"repo/.git/info/exclude":    "*.swp\n",
		"repo/.gitignore":           "*.log\n",
		"repo/services/.gitignore":  "gen/\n",
		"repo/services/api/gen/":    "",
		"repo/services/api/keep/":   "",
		"repo/services/api/main.go": "",
	})
	h := start(t, dir, Options{Roots: []Root{{Name: "api", Dir: "repo/services/api"}}, Quiet: quiet, Cap: limit})
	if got, want := h.watched(), []string{"repo/services/api", "repo/services/api/keep"}; !reflect.DeepEqual(got, want) {
		t.Errorf("watched %v, want %v", got, want)
	}
	for _, p := range []string{"repo/services/api/x.log", "repo/services/api/.x.swp"} {
		h.send(fsnotify.Write, p)
	}
	h.step(quiet)
	h.none()
	h.send(fsnotify.Write, "repo/services/api/main.go")
	h.step(quiet)
	if b := h.next(); !reflect.DeepEqual(b.Changes["api"], []string{"main.go"}) {
		t.Errorf("Changes = %v", b.Changes)
	}
}

// Editing an ignore file applies it to the folders already watched.
func TestIgnoreFileEdits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"gen/x/": "", "dist/": ""})
	h := start(t, dir, Options{Roots: []Root{{Name: "app", Dir: ".", Dockerignore: true}}, Quiet: quiet, Cap: limit})
	edit := func(name, content string, watched ...string) {
		t.Helper()
		writeTree(t, dir, map[string]string{name: content})
		h.send(fsnotify.Write, name)
		h.step(quiet)
		if b := h.next(); !reflect.DeepEqual(b.Changes["app"], []string{name}) {
			t.Errorf("after editing %s: Changes = %v", name, b.Changes)
		}
		if got := h.watched(); !reflect.DeepEqual(got, watched) {
			t.Errorf("after writing %q to %s: watched %v, want %v", content, name, got, watched)
		}
	}
	edit(".gitignore", "gen/\n", ".", "dist")
	edit(".dockerignore", "dist\n", ".")
	edit(".gitignore", "", ".", "gen", "gen/x")
	edit(".dockerignore", "[", ".", "gen", "gen/x") // invalid: the previous rules stay
	edit(".dockerignore", "", ".", "dist", "gen", "gen/x")
}

// A node_modules with many folders costs no watch when ignored.
func TestIgnoredTreeIsNotWalked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{".gitignore": "node_modules/\n", "src/main.go": ""}
	for i := range 300 {
		files[fmt.Sprintf("node_modules/pkg%03d/lib/index.js", i)] = ""
	}
	writeTree(t, dir, files)
	n, err := countDirs(t.Context(), Options{Roots: []Root{{Name: "app", Dir: dir}}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("watches %d folders, want 2 (the root and src)", n)
	}
}
