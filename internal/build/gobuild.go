package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goBuild compiles g into root for linux/arch, with the compiler's output
// going to out.
func goBuild(ctx context.Context, root, arch string, g GoSpec, out *lineWriter) error {
	if g.Package == "" || g.Output == "" {
		return errors.New("go build: package and output are required: set services[].go.package and services[].go.output in devctl.yaml")
	}
	output := g.Output
	if !filepath.IsAbs(output) {
		output = filepath.Join(root, output)
	}
	if rel, err := filepath.Rel(root, output); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("go build: output %q is outside the build context %q: put the binary inside the context", g.Output, root)
	}
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go build: %w: install Go (https://go.dev/dl) or remove services[].go from devctl.yaml", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-o", output, g.Package)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	out.Flush()
	if err != nil {
		return &BuildError{
			Step:    StepGoBuild,
			Message: fmt.Sprintf("go build %s in %s: %v", g.Package, root, err),
			Output:  out.Tail(),
		}
	}
	return nil
}
