package helm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// Render renders ch client-side, without a cluster, as `helm template` does:
// the result is the release manifest, each document headed by a
// `# Source: <chart>/templates/<file>` comment, followed by any hooks.
// Values that break the chart's schema fail with ErrInvalidValues and the
// offending key.
func Render(ctx context.Context, ch *chart.Chart, releaseName, namespace string, values map[string]any) (string, error) {
	if err := checkArgs(ch, releaseName, namespace); err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("render %s: %w", ch.Name(), err)
	}
	if err := ValidateValues(ch, values); err != nil {
		return "", fmt.Errorf("render %s: %w", ch.Name(), err)
	}
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.ClientOnly = true
	in.DryRun = true
	in.Replace = true // skip the name-in-use check, there is no cluster
	in.IncludeCRDs = true
	in.ReleaseName = releaseName
	in.Namespace = namespace
	// Render is CPU-bound and short; the chart is not installed, so nothing
	// is left running if ctx ends.
	rel, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", ch.Name(), renderError(err))
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(rel.Manifest))
	b.WriteString("\n")
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, strings.TrimSpace(h.Manifest))
	}
	return b.String(), nil
}

// ValidateValues checks values, merged over the chart's defaults, against
// the chart's values.schema.json (and its subcharts'). The error wraps
// ErrInvalidValues and lists each violation with its key.
func ValidateValues(ch *chart.Chart, values map[string]any) error {
	// Helm logs (to the global logger) and drops a value whose shape differs
	// from the default's; report it instead.
	if err := checkShapes(ch.Values, values, ""); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValues, err)
	}
	merged, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValues, err)
	}
	if err := chartutil.ValidateAgainstSchema(ch, merged); err != nil {
		return fmt.Errorf("%w (fix the keys below in the service's values):\n%s", ErrInvalidValues, strings.TrimSpace(err.Error()))
	}
	return nil
}

// checkShapes reports a key that is a map in one of defaults and values and
// not in the other. A nil value is allowed: it removes the default.
func checkShapes(defaults, values map[string]any, prefix string) error {
	for _, k := range slices.Sorted(maps.Keys(values)) {
		v, d := values[k], defaults[k]
		if v == nil || d == nil {
			continue
		}
		vm, vIsMap := v.(map[string]any)
		dm, dIsMap := d.(map[string]any)
		switch {
		case dIsMap && !vIsMap:
			return fmt.Errorf("%s%s: got %T, want an object", prefix, k, v)
		case !dIsMap && vIsMap:
			return fmt.Errorf("%s%s: got an object, want %T", prefix, k, d)
		case dIsMap:
			if err := checkShapes(dm, vm, prefix+k+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// renderError marks template failures raised by the chart's own checks
// (`required`, `fail`) as invalid values: they are about the input.
func renderError(err error) error {
	if strings.Contains(err.Error(), "execution error at (") {
		return fmt.Errorf("%w: %w", ErrInvalidValues, err)
	}
	return err
}

func checkArgs(ch *chart.Chart, releaseName, namespace string) error {
	switch {
	case ch == nil:
		return fmt.Errorf("%w: no chart", ErrInvalidArgument)
	case releaseName == "":
		return fmt.Errorf("%w: the release name is empty", ErrInvalidArgument)
	case namespace == "":
		return fmt.Errorf("%w: the namespace is empty", ErrInvalidArgument)
	}
	if err := chartutil.ValidateReleaseName(releaseName); err != nil {
		return fmt.Errorf("%w: release name %q: %w (use lowercase letters, digits and '-', at most 53 characters)", ErrInvalidArgument, releaseName, err)
	}
	return nil
}
