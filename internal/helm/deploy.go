package helm

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// DigestLabel is the release label that records the digest of the chart
// files and values a release was deployed with. Deploy compares it to skip
// upgrades that would change nothing.
const DigestLabel = "devctl.dev/digest"

// Defaults of Deploy.
const (
	DefaultTimeout    = 5 * time.Minute
	DefaultMaxHistory = 10
)

// Deploy installs or upgrades a release so that it runs a chart with given
// values, and does nothing when that is already the case.
type Deploy struct {
	cfg *Config

	// ReleaseName names the release; required.
	ReleaseName string
	// Namespace is where the release's objects and its record live. It
	// defaults to the Config's namespace and must equal it.
	Namespace string
	// Timeout bounds Helm's own operations; DefaultTimeout when zero.
	// Readiness is the caller's to wait for (internal/kube).
	Timeout time.Duration
	// Labels are added to the release record (not to the chart's objects),
	// e.g. the branch or environment, so releases can be listed by label.
	// Changing only Labels does not cause an upgrade.
	Labels map[string]string
	// MaxHistory is the number of revisions kept; DefaultMaxHistory when
	// zero.
	MaxHistory int
}

// Result describes what a Deploy run did.
type Result struct {
	// Revision is the release revision now deployed.
	Revision int
	// Changed is false when the deployed release already had this digest
	// and nothing was applied.
	Changed bool
	// Manifest is the rendered manifest of the deployed revision.
	Manifest string
	// Digest is the digest of the chart files and values (DigestLabel).
	Digest string
}

// Outcome says what the deploy did: "installed", "upgraded" or "unchanged".
func (r *Result) Outcome() string {
	switch {
	case !r.Changed:
		return "unchanged"
	case r.Revision == 1:
		return "installed"
	default:
		return "upgraded"
	}
}

// NewDeploy returns a Deploy for cfg with defaults set.
func NewDeploy(cfg *Config) *Deploy {
	return &Deploy{
		cfg:        cfg,
		Namespace:  cfg.namespace,
		Timeout:    DefaultTimeout,
		MaxHistory: DefaultMaxHistory,
	}
}

// Run makes the release run ch with values. It installs the release if it is
// absent (creating the namespace), upgrades it only when the digest of the
// chart and values differs from the deployed revision's, and repairs a
// release left failed or pending by an earlier run by upgrading it.
func (d *Deploy) Run(ctx context.Context, ch *chart.Chart, values map[string]any) (*Result, error) {
	if err := d.check(ch); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if err := ValidateValues(ch, values); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", d.ReleaseName, err)
	}
	digest, err := Digest(ch, values)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", d.ReleaseName, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", d.ReleaseName, err)
	}

	last, err := action.NewGet(d.cfg.action).Run(d.ReleaseName)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		last = nil
	case err != nil:
		return nil, fmt.Errorf("deploy %s: read release: %w%s", d.ReleaseName, err, unreachableHint(err))
	}

	var rel *release.Release
	changed := true
	switch {
	case last == nil:
		rel, err = d.install(ctx, ch, values, digest, false)
	case last.Info.Status == release.StatusUninstalled:
		rel, err = d.install(ctx, ch, values, digest, true)
	case last.Info.Status == release.StatusDeployed && last.Labels[DigestLabel] == digest:
		d.cfg.debugf("release %s revision %d is up to date (digest %s)", last.Name, last.Version, digest)
		rel, changed = last, false
	default:
		// deployed with another digest, failed, superseded, or left
		// pending-* by an interrupted run: upgrade, which also repairs.
		if last.Info.Status.IsPending() || last.Info.Status == release.StatusUninstalling {
			if err := d.markFailed(last, fmt.Sprintf("interrupted while %s; devctl deploys it again", last.Info.Status)); err != nil {
				return nil, fmt.Errorf("deploy %s: recover from %s: %w", d.ReleaseName, last.Info.Status, err)
			}
		}
		rel, err = d.upgrade(ctx, ch, values, digest)
	}
	if err != nil {
		return nil, err
	}

	return &Result{Revision: rel.Version, Changed: changed, Manifest: rel.Manifest, Digest: digest}, nil
}

func (d *Deploy) check(ch *chart.Chart) error {
	if err := checkArgs(ch, d.ReleaseName, d.Namespace); err != nil {
		return err
	}
	if d.Namespace != d.cfg.namespace {
		return fmt.Errorf("%w: namespace %q differs from the config's %q (create a Config for that namespace)", ErrInvalidArgument, d.Namespace, d.cfg.namespace)
	}
	return nil
}

func (d *Deploy) labels(digest string) map[string]string {
	l := maps.Clone(d.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[DigestLabel] = digest
	return l
}

func (d *Deploy) timeout() time.Duration {
	if d.Timeout <= 0 {
		return DefaultTimeout
	}
	return d.Timeout
}

// install and upgrade do not wait for readiness (Helm's wait cannot be
// cancelled); Helm's work after ctx ends is a few API calls that finish and
// record the release.
func (d *Deploy) install(ctx context.Context, ch *chart.Chart, values map[string]any, digest string, replace bool) (*release.Release, error) {
	in := action.NewInstall(d.cfg.action)
	in.ReleaseName = d.ReleaseName
	in.Namespace = d.Namespace
	in.CreateNamespace = true
	in.Replace = replace
	in.Timeout = d.timeout()
	in.Labels = d.labels(digest)
	in.Description = "Installed by devctl"
	rel, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, fmt.Errorf("install %s in namespace %s: %w%s", d.ReleaseName, d.Namespace, renderError(err), unreachableHint(err))
	}
	return rel, nil
}

func (d *Deploy) upgrade(ctx context.Context, ch *chart.Chart, values map[string]any, digest string) (*release.Release, error) {
	up := action.NewUpgrade(d.cfg.action)
	up.Namespace = d.Namespace
	up.Timeout = d.timeout()
	up.MaxHistory = d.MaxHistory
	if up.MaxHistory <= 0 {
		up.MaxHistory = DefaultMaxHistory
	}
	up.Labels = d.labels(digest)
	up.Description = "Upgraded by devctl"
	rel, err := up.RunWithContext(ctx, d.ReleaseName, ch, values)
	if err != nil {
		return nil, fmt.Errorf("upgrade %s in namespace %s: %w%s", d.ReleaseName, d.Namespace, renderError(err), unreachableHint(err))
	}
	return rel, nil
}

func (d *Deploy) markFailed(rel *release.Release, why string) error {
	rel.SetStatus(release.StatusFailed, why)
	return d.cfg.action.Releases.Update(rel)
}

// Digest returns the digest Deploy records for ch deployed with values: a
// SHA-256 over the chart's metadata, templates, default values, schema and
// files (recursively for subcharts) and the values as canonical JSON. It is
// encoded in lowercase base32 so that it is a valid label value.
func Digest(ch *chart.Chart, values map[string]any) (string, error) {
	h := sha256.New()
	if err := hashChart(h, ch); err != nil {
		return "", fmt.Errorf("digest chart %s: %w", ch.Name(), err)
	}
	v, err := json.Marshal(values) // map keys are sorted
	if err != nil {
		return "", fmt.Errorf("digest values: %w", err)
	}
	writeField(h, "values", v)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return strings.ToLower(enc.EncodeToString(h.Sum(nil))), nil
}

// ChartDigest is a short digest of ch alone (its files, defaults and
// schema), for status displays: it changes exactly when the chart does.
func ChartDigest(ch *chart.Chart) (string, error) {
	h := sha256.New()
	if err := hashChart(h, ch); err != nil {
		return "", fmt.Errorf("digest chart %s: %w", ch.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// ValuesDigest is a short digest of values as canonical JSON.
func ValuesDigest(values map[string]any) (string, error) {
	v, err := json.Marshal(values) // map keys are sorted
	if err != nil {
		return "", fmt.Errorf("digest values: %w", err)
	}
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:])[:12], nil
}

func hashChart(w io.Writer, ch *chart.Chart) error {
	meta, err := json.Marshal(ch.Metadata)
	if err != nil {
		return err
	}
	writeField(w, "chart", meta)
	files := make([]*chart.File, 0, len(ch.Templates)+len(ch.Files))
	files = append(files, ch.Templates...)
	files = append(files, ch.Files...)
	slices.SortFunc(files, func(a, b *chart.File) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range files {
		writeField(w, "file", []byte(f.Name))
		writeField(w, "data", f.Data)
	}
	defaults, err := json.Marshal(ch.Values)
	if err != nil {
		return err
	}
	writeField(w, "defaults", defaults)
	writeField(w, "schema", ch.Schema)
	deps := slices.Clone(ch.Dependencies())
	slices.SortFunc(deps, func(a, b *chart.Chart) int { return strings.Compare(a.Name(), b.Name()) })
	for _, dep := range deps {
		writeField(w, "dependency", []byte(dep.Name()))
		if err := hashChart(w, dep); err != nil {
			return err
		}
	}
	return nil
}

// writeField writes a length-prefixed field so that no two different inputs
// produce the same byte stream.
func writeField(w io.Writer, kind string, data []byte) {
	fmt.Fprintf(w, "%s %d\n", kind, len(data))
	w.Write(data) //nolint:errcheck // hash.Hash.Write never fails
}

// unreachableHint suggests what to do when the cluster cannot be reached.
func unreachableHint(err error) string {
	if strings.Contains(err.Error(), "Kubernetes cluster unreachable") {
		return " (is the environment running? check with `devctl ls`, start it with `devctl up`)"
	}
	return ""
}
