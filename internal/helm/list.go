package helm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// Release summarises one release for callers that should not depend on
// Helm's types.
type Release struct {
	Name       string
	Namespace  string
	Revision   int
	Status     string // deployed, failed, pending-install, ...
	Chart      string // name-version
	AppVersion string
	Updated    time.Time
	Digest     string // DigestLabel, empty if not deployed by devctl
	Labels     map[string]string
}

func summarize(r *release.Release) Release {
	s := Release{
		Name:      r.Name,
		Namespace: r.Namespace,
		Revision:  r.Version,
		Labels:    r.Labels,
		Digest:    r.Labels[DigestLabel],
	}
	if r.Info != nil {
		s.Status = r.Info.Status.String()
		s.Updated = r.Info.LastDeployed.Time
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		s.Chart = r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version
		s.AppVersion = r.Chart.Metadata.AppVersion
	}
	return s
}

// List lists the releases in the Config's namespace, latest revision of
// each, in any state.
type List struct {
	cfg *Config

	// Selector filters on release labels (Deploy.Labels), e.g.
	// "devctl.dev/branch=main". Empty lists all.
	Selector string
}

// NewList returns a List for cfg.
func NewList(cfg *Config) *List { return &List{cfg: cfg} }

// Run returns the releases sorted by name (Helm's default order).
func (l *List) Run(ctx context.Context) ([]Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	ls := action.NewList(l.cfg.action)
	ls.All = true
	ls.SetStateMask()
	ls.Selector = l.Selector
	rels, err := ls.Run()
	if err != nil {
		return nil, fmt.Errorf("list releases in namespace %s: %w%s", l.cfg.namespace, err, unreachableHint(err))
	}
	out := make([]Release, 0, len(rels))
	for _, r := range rels {
		out = append(out, summarize(r))
	}
	return out, nil
}

// Uninstall removes a release and its objects, and its history.
type Uninstall struct {
	cfg *Config

	// Wait blocks until the objects are gone, up to Timeout.
	Wait bool
	// Timeout bounds Wait; DefaultTimeout when zero.
	Timeout time.Duration
	// IgnoreNotFound makes a missing release a success.
	IgnoreNotFound bool
}

// NewUninstall returns an Uninstall for cfg.
func NewUninstall(cfg *Config) *Uninstall {
	return &Uninstall{cfg: cfg, Timeout: DefaultTimeout}
}

// Run uninstalls the release name. A missing release is ErrReleaseNotFound
// unless IgnoreNotFound is set. Helm's uninstall takes no context, so ctx is
// checked before it starts; the deletion itself is a few API calls.
func (u *Uninstall) Run(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("uninstall %s: %w", name, err)
	}
	un := action.NewUninstall(u.cfg.action)
	un.Wait = u.Wait
	un.Timeout = u.Timeout
	if un.Timeout <= 0 {
		un.Timeout = DefaultTimeout
	}
	un.DeletionPropagation = "background"
	un.IgnoreNotFound = u.IgnoreNotFound
	if _, err := un.Run(name); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return fmt.Errorf("uninstall %s in namespace %s: %w", name, u.cfg.namespace, ErrReleaseNotFound)
		}
		return fmt.Errorf("uninstall %s in namespace %s: %w%s", name, u.cfg.namespace, err, unreachableHint(err))
	}
	return nil
}
