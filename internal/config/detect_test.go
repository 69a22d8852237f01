package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	const mainGo = "package main\n\nfunc main() {}\n"
	tests := []struct {
		name      string
		dir       string // folder name, to check name sanitising
		files     map[string]string
		want      Service
		wantNotes []string
	}{{
		name: "Dockerfile with EXPOSE in the final stage",
		dir:  "Hello_World.svc",
		files: map[string]string{
			"Dockerfile": "# syntax=docker/dockerfile:1\nFROM golang AS build\nEXPOSE 1234\nFROM scratch\nCOPY --from=build \\\n  /out /app\nexpose 9090/tcp 9091\n",
			"main.go":    mainGo,
		},
		want: Service{Name: "hello-world-svc", Context: ".", Dockerfile: "Dockerfile", Port: 9090},
		wantNotes: []string{
			`name "hello-world-svc" from the folder name`,
			"using Dockerfile ./Dockerfile",
			"port 9090 from EXPOSE",
		},
	}, {
		name:      "Dockerfile without EXPOSE",
		dir:       "api",
		files:     map[string]string{"Dockerfile": "FROM scratch\nEXPOSE $PORT\n"},
		want:      Service{Name: "api", Context: ".", Dockerfile: "Dockerfile", Port: 8080},
		wantNotes: []string{"port 8080 (default: the Dockerfile has no numeric EXPOSE)"},
	}, {
		name: "Go main package at the root",
		dir:  "hello",
		files: map[string]string{
			"go.mod":  "module example.com/hello\n",
			"main.go": mainGo,
			// Excluded by a build constraint, so it does not make the folder ambiguous.
			"gen.go": "//go:build ignore\n\npackage gen\n",
		},
		want: Service{Name: "hello", Context: ".", Dockerfile: "Dockerfile", Port: 8080,
			Go: &GoBuild{Package: ".", Output: "bin/hello"}, Watch: Watch{Ignore: []string{"bin/"}}},
		wantNotes: []string{
			"Go main package .: compiled with CGO_ENABLED=0 to bin/hello before each image build",
			"no Dockerfile: `devctl init` writes a FROM scratch Dockerfile that runs bin/hello",
		},
	}, {
		name: "Go main packages under cmd",
		dir:  "shop",
		files: map[string]string{
			"go.mod":             "module example.com/shop\n",
			"lib.go":             "package shop\n",
			"cmd/admin/main.go":  mainGo,
			"cmd/shop/main.go":   mainGo,
			"cmd/tools/tools.go": "package tools\n",
		},
		want: Service{Name: "shop", Context: ".", Dockerfile: "Dockerfile", Port: 8080,
			Go: &GoBuild{Package: "./cmd/shop", Output: "bin/shop"}, Watch: Watch{Ignore: []string{"bin/"}}},
		wantNotes: []string{"other main packages (./cmd/admin) are not services yet; add them to services by hand"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), tt.dir)
			for name, data := range tt.files {
				mustMkdir(t, filepath.Dir(filepath.Join(dir, name)))
				mustWrite(t, filepath.Join(dir, name), data)
			}
			c, notes, err := Detect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Services) != 1 || !reflect.DeepEqual(c.Services[0], tt.want) {
				t.Errorf("services = %+v, want [%+v]", c.Services, tt.want)
			}
			if c.Name != tt.want.Name || c.Team != DefaultTeam || c.Dir != dir || c.Path != filepath.Join(dir, FileName) {
				t.Errorf("config = %+v", c)
			}
			for _, n := range tt.wantNotes {
				if !slices.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, strings.Join(notes, "\n"))
				}
			}
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, `team "unassigned"`) }) {
				t.Errorf("notes do not ask to set the team:\n%s", strings.Join(notes, "\n"))
			}
			// What Detect proposes is valid and survives being written and read back.
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			out, err := Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(c.Path, out)
			if err != nil {
				t.Fatalf("Parse(Marshal(Detect)): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(public(back), public(c)) {
				t.Errorf("round trip:\n got %+v\nwant %+v", public(back), public(c))
			}
		})
	}
}

func TestDetectNothingToBuild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "README.md"), "# docs\n")
	mustWrite(t, filepath.Join(dir, "lib.go"), "package lib\n")
	_, _, err := Detect(dir)
	if !errors.Is(err, ErrNothingToBuild) {
		t.Fatalf("Detect = %v, want ErrNothingToBuild", err)
	}
	if !strings.Contains(err.Error(), "add a Dockerfile") {
		t.Errorf("error %q gives no way out", err)
	}
}

func TestSanitizeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"hello": "hello", "My Service!": "my-service", "--x--": "x", "___": "app",
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
