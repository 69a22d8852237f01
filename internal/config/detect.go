package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNothingToBuild is returned by Detect when a folder has neither a
// Dockerfile nor a Go main package.
var ErrNothingToBuild = errors.New("nothing to build: no Dockerfile and no Go main package; add a Dockerfile or write " + FileName + " by hand")

// Detect proposes a Config for a repository without devctl.yaml. A
// Dockerfile in dir becomes the service (port from its EXPOSE, else 8080);
// otherwise a Go main package in dir or under dir/cmd becomes a service with
// a Go build step, whose Dockerfile does not exist yet: `devctl init` writes
// ScratchDockerfile for it. The notes say each choice made, for the user.
func Detect(dir string) (*Config, []string, error) {
	return DetectWith(dir, DetectOptions{})
}

// DetectOptions steer Detect.
type DetectOptions struct {
	// Deploy is how the service is deployed: "" picks the repository's
	// own chart, Kustomize folder or manifests when it has one (see
	// DetectHatches), else the golden path; DeployGoldenPath, DeployChart,
	// DeployKustomize or DeployManifests ask for one.
	Deploy string
}

// DetectWith is Detect with options.
func DetectWith(dir string, o DetectOptions) (*Config, []string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("detect project: %w", err)
	}
	name := sanitizeName(filepath.Base(abs))
	c := &Config{
		APIVersion: APIVersion,
		Kind:       Kind,
		Name:       name,
		Team:       DefaultTeam,
		Cluster:    Cluster{Provider: DefaultProvider},
		Policy:     Policy{FailOn: DefaultFailOn},
		Dir:        abs,
		Path:       filepath.Join(abs, FileName),
	}
	notes := []string{fmt.Sprintf("name %q from the folder name", name)}
	svc := Service{Name: name, Context: DefaultContext, Dockerfile: DefaultDockerfile, Port: DefaultPort}

	hatch, hatchNotes, err := pickHatch(abs, name, o.Deploy)
	if err != nil {
		return nil, nil, err
	}
	// The port: the Dockerfile's EXPOSE, else the chart's values, else the
	// default of the main package's listen flag, else DefaultPort.
	portFrom := func(mainDir string) (int, string) {
		if hatch != nil && hatch.Port > 0 {
			return hatch.Port, fmt.Sprintf("port %d from the chart's values (%s/values.yaml)", hatch.Port, hatch.Path)
		}
		if mainDir != "" {
			if p, at := goFlagPort(mainDir); p > 0 {
				return p, fmt.Sprintf("port %d from the default of the listen flag (%s)", p, at)
			}
		}
		return 0, ""
	}
	data, err := os.ReadFile(filepath.Join(abs, DefaultDockerfile))
	switch {
	case err == nil:
		notes = append(notes, "using Dockerfile ./"+DefaultDockerfile)
		mainDir := ""
		if isMain(abs) {
			mainDir = abs
		}
		if port, ok := exposedPort(data); ok {
			svc.Port = port
			notes = append(notes, fmt.Sprintf("port %d from EXPOSE", port))
		} else if port, why := portFrom(mainDir); port > 0 {
			svc.Port = port
			notes = append(notes, why)
		} else {
			notes = append(notes, fmt.Sprintf("port %d (default: the Dockerfile has no numeric EXPOSE)", DefaultPort))
		}
	case errors.Is(err, fs.ErrNotExist):
		pkg, others, err := findMain(abs, name)
		if err != nil {
			return nil, nil, fmt.Errorf("detect project in %s: %w", abs, err)
		}
		svc.Go = &GoBuild{Package: pkg, Output: path.Join("bin", name)}
		svc.Watch.Ignore = []string{"bin/"}
		notes = append(notes,
			fmt.Sprintf("Go main package %s: compiled with CGO_ENABLED=0 to %s before each image build", pkg, svc.Go.Output))
		if len(others) > 0 {
			notes = append(notes, fmt.Sprintf("other main packages (%s) are not services yet; add them to services by hand", strings.Join(others, ", ")))
		}
		notes = append(notes, "no Dockerfile: `devctl init` writes a FROM scratch Dockerfile that runs "+svc.Go.Output)
		if port, why := portFrom(filepath.Join(abs, pkg)); port > 0 {
			svc.Port = port
			notes = append(notes, why)
		} else {
			notes = append(notes, fmt.Sprintf("port %d (default: change services[0].port if the server listens elsewhere)", DefaultPort))
		}
	default:
		return nil, nil, fmt.Errorf("detect project: %w", err)
	}
	if hatch != nil {
		switch hatch.Deployer {
		case DeployChart:
			svc.Chart = hatch.Path
		case DeployKustomize:
			svc.Kustomize = hatch.Path
		case DeployManifests:
			svc.Manifests = []string{hatch.Path}
		}
		if hatch.Image != "" && hatch.Image != name {
			svc.Image = hatch.Image
		}
	}
	notes = append(notes, hatchNotes...)
	c.Services = []Service{svc}
	notes = append(notes, fmt.Sprintf("team %q: set team to the owning team, it labels resources for cost reports", DefaultTeam))
	return c, notes, nil
}

// pickHatch chooses how the service is deployed and says why.
func pickHatch(dir, name, deploy string) (*Hatch, []string, error) {
	if deploy == DeployGoldenPath {
		return nil, []string{"deployed with the golden-path chart (asked for)"}, nil
	}
	all := DetectHatches(dir, name)
	var pick *Hatch
	for i := range all {
		if deploy == "" || all[i].Deployer == deploy {
			pick = &all[i]
			break
		}
	}
	switch {
	case pick == nil && deploy != "":
		return nil, nil, fmt.Errorf("detect project in %s: asked to deploy with %s, but there is no %s here; give its path in %s (services[].%s) by hand", dir, deploy, deploy, FileName, deploy)
	case pick == nil:
		return nil, []string{"deployed with the golden-path chart: the repository has no chart, Kustomize folder or manifests folder of its own"}, nil
	}
	notes := []string{fmt.Sprintf("deployed with its own %s: found %s; it is checked against the same policies (`devctl init --force --deploy golden-path` uses the golden-path chart instead)", pick.Deployer, pick.Why)}
	if pick.Image != "" {
		notes = append(notes, fmt.Sprintf("image %s: the name its containers use, replaced by the image devctl builds", pick.Image))
	} else {
		notes = append(notes, fmt.Sprintf("no image named like %q found in it: set services[0].image to the name its containers use", name))
	}
	var others []string
	for i := range all {
		if &all[i] != pick {
			others = append(others, all[i].Deployer+" "+all[i].Path)
		}
	}
	if len(others) > 0 {
		notes = append(notes, "also found (not used): "+strings.Join(others, ", "))
	}
	return pick, notes, nil
}

// findMain returns the Go main package in dir, else the one under dir/cmd
// named like the project, else the first under dir/cmd (listing the rest).
func findMain(dir, name string) (pkg string, others []string, err error) {
	if isMain(dir) {
		return ".", nil, nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, "cmd"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", nil, err
	}
	var mains []string
	for _, e := range entries {
		if e.IsDir() && isMain(filepath.Join(dir, "cmd", e.Name())) {
			mains = append(mains, "./cmd/"+e.Name())
		}
	}
	if len(mains) == 0 {
		return "", nil, ErrNothingToBuild
	}
	pick := 0
	for i, m := range mains {
		if path.Base(m) == name {
			pick = i
		}
	}
	pkg = mains[pick]
	return pkg, append(mains[:pick:pick], mains[pick+1:]...), nil
}

// isMain reports whether dir holds a Go main package buildable for Linux
// without cgo (files excluded by build constraints do not count).
func isMain(dir string) bool {
	ctxt := build.Default
	ctxt.GOOS = "linux"
	ctxt.CgoEnabled = false
	p, err := ctxt.ImportDir(dir, 0)
	return err == nil && p.Name == "main"
}

// exposedPort returns the first numeric port of the EXPOSE instructions in
// the Dockerfile's final stage.
func exposedPort(dockerfile []byte) (int, bool) {
	var ports []int
	var line string
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		fields := strings.Fields(line)
		line = ""
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			ports = nil
		case "EXPOSE":
			for _, f := range fields[1:] {
				p, _, _ := strings.Cut(f, "/")
				if n, err := strconv.Atoi(p); err == nil && n > 0 && n <= 65535 {
					ports = append(ports, n)
				}
			}
		}
	}
	if len(ports) == 0 {
		return 0, false
	}
	return ports[0], true
}

// sanitizeName turns a folder name into a DNS-1123 label.
func sanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	name := b.String()
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "app"
	}
	return name
}
