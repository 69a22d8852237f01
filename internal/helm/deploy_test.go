package helm

import (
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"

	"github.com/devctl/devctl/charts"
)

const testNS = "shop-main"

func goldenPath(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func values(tag string) map[string]any {
	return map[string]any{
		"image":  map[string]any{"repository": "localhost:5001/shop", "tag": tag},
		"branch": "main",
	}
}

func TestDeployInstallsOnceAndUpgradesOnChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := newMemoryConfig()
	ch := goldenPath(t)

	steps := []struct {
		name         string
		chart        *chart.Chart
		values       map[string]any
		wantRevision int
		wantChanged  bool
	}{
		{"first run installs", ch, values("v1"), 1, true},
		{"same chart and values: no-op", ch, values("v1"), 1, false},
		{"values changed: upgrade", ch, values("v2"), 2, true},
		{"same again: no-op", ch, values("v2"), 2, false},
		{"chart changed: upgrade", withTemplate(ch, "templates/extra.yaml", "# nothing\n"), values("v2"), 3, true},
		{"back to the old chart: upgrade", ch, values("v2"), 4, true},
	}
	for _, s := range steps {
		d := NewDeploy(cfg)
		d.ReleaseName = "shop"
		d.Labels = map[string]string{"devctl.dev/branch": "main"}
		res, err := d.Run(ctx, s.chart, s.values)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Revision != s.wantRevision || res.Changed != s.wantChanged {
			t.Errorf("%s: revision %d changed %v, want %d %v", s.name, res.Revision, res.Changed, s.wantRevision, s.wantChanged)
		}
		want, err := Digest(s.chart, s.values)
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != want {
			t.Errorf("%s: digest %s, want %s", s.name, res.Digest, want)
		}
		if !strings.Contains(res.Manifest, "image: \"localhost:5001/shop:"+s.values["image"].(map[string]any)["tag"].(string)+"\"") {
			t.Errorf("%s: manifest does not run the requested image:\n%s", s.name, res.Manifest)
		}
		rel, err := cfg.action.Releases.Last("shop")
		if err != nil {
			t.Fatal(err)
		}
		if rel.Version != s.wantRevision || rel.Info.Status != release.StatusDeployed {
			t.Errorf("%s: stored release is revision %d %s, want %d deployed", s.name, rel.Version, rel.Info.Status, s.wantRevision)
		}
		if rel.Labels[DigestLabel] != res.Digest || rel.Labels["devctl.dev/branch"] != "main" {
			t.Errorf("%s: release labels = %v", s.name, rel.Labels)
		}
	}
}

// withTemplate returns a copy of ch with one more template.
func withTemplate(ch *chart.Chart, name, data string) *chart.Chart {
	c := *ch
	c.Templates = append(append([]*chart.File{}, ch.Templates...), &chart.File{Name: name, Data: []byte(data)})
	return &c
}

func TestDeployRecoversBrokenRelease(t *testing.T) {
	t.Parallel()
	for _, status := range []release.Status{
		release.StatusFailed,
		release.StatusPendingInstall,
		release.StatusPendingUpgrade,
		release.StatusPendingRollback,
		release.StatusUninstalling,
	} {
		t.Run(status.String(), func(t *testing.T) {
			t.Parallel()
			cfg := newMemoryConfig()
			ch := goldenPath(t)
			d := NewDeploy(cfg)
			d.ReleaseName = "shop"
			if _, err := d.Run(t.Context(), ch, values("v1")); err != nil {
				t.Fatal(err)
			}
			// An earlier run died or failed half-way.
			rel, err := cfg.action.Releases.Last("shop")
			if err != nil {
				t.Fatal(err)
			}
			rel.SetStatus(status, "simulated")
			if err := cfg.action.Releases.Update(rel); err != nil {
				t.Fatal(err)
			}

			res, err := d.Run(t.Context(), ch, values("v1"))
			if err != nil {
				t.Fatalf("run on a %s release: %v", status, err)
			}
			if !res.Changed || res.Revision != 2 {
				t.Errorf("revision %d changed %v, want 2 true", res.Revision, res.Changed)
			}
			last, err := cfg.action.Releases.Last("shop")
			if err != nil {
				t.Fatal(err)
			}
			if last.Info.Status != release.StatusDeployed {
				t.Errorf("status = %s, want deployed", last.Info.Status)
			}
		})
	}
}

func TestDeployReinstallsUninstalledRelease(t *testing.T) {
	t.Parallel()
	cfg := newMemoryConfig()
	ch := goldenPath(t)
	d := NewDeploy(cfg)
	d.ReleaseName = "shop"
	if _, err := d.Run(t.Context(), ch, values("v1")); err != nil {
		t.Fatal(err)
	}
	rel, err := cfg.action.Releases.Last("shop")
	if err != nil {
		t.Fatal(err)
	}
	rel.SetStatus(release.StatusUninstalled, "uninstalled with --keep-history")
	if err := cfg.action.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	res, err := d.Run(t.Context(), ch, values("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed {
		t.Error("Changed = false after reinstalling")
	}
	last, err := cfg.action.Releases.Last("shop")
	if err != nil {
		t.Fatal(err)
	}
	if last.Info.Status != release.StatusDeployed {
		t.Errorf("status = %s, want deployed", last.Info.Status)
	}
}

func TestDeployRejectsBadInput(t *testing.T) {
	t.Parallel()
	ch := goldenPath(t)
	tests := []struct {
		name    string
		release string
		ns      string
		values  map[string]any
		want    error
	}{
		{"schema error", "shop", testNS, map[string]any{"image": map[string]any{"repository": "r"}, "replica": 2}, ErrInvalidValues},
		{"template check", "shop", testNS, map[string]any{"image": map[string]any{"repository": "r"}, "hpa": map[string]any{"enabled": true, "minReplicas": 9, "maxReplicas": 1}}, ErrInvalidValues},
		{"no release name", "", testNS, values("v1"), ErrInvalidArgument},
		{"bad release name", "Shop_1", testNS, values("v1"), ErrInvalidArgument},
		{"other namespace", "shop", "elsewhere", values("v1"), ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := newMemoryConfig()
			d := NewDeploy(cfg)
			d.ReleaseName, d.Namespace = tt.release, tt.ns
			_, err := d.Run(t.Context(), ch, tt.values)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if rels, _ := cfg.action.Releases.ListReleases(); len(rels) != 0 {
				t.Errorf("a rejected deploy stored %d releases", len(rels))
			}
		})
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	ch := goldenPath(t)
	base, err := Digest(ch, values("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(base) > 63 || !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(base) {
		t.Errorf("digest %q is not a valid label value", base)
	}
	changedDefaults := *ch
	changedDefaults.Values = maps.Clone(ch.Values)
	changedDefaults.Values["replicas"] = 3

	tests := []struct {
		name   string
		chart  *chart.Chart
		values map[string]any
		same   bool
	}{
		{"same input", goldenPath(t), values("v1"), true},
		{"same values built in another order", goldenPath(t), map[string]any{"branch": "main", "image": map[string]any{"tag": "v1", "repository": "localhost:5001/shop"}}, true},
		{"other value", ch, values("v2"), false},
		{"extra value", ch, map[string]any{"image": values("v1")["image"], "branch": "main", "replicas": 1}, false},
		{"other template", withTemplate(ch, "templates/x.yaml", ""), values("v1"), false},
		{"other default values", &changedDefaults, values("v1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Digest(tt.chart, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if (got == base) != tt.same {
				t.Errorf("digest %s vs base %s: same = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
}
