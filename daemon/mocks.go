package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/mocks"
	"github.com/devctl/devctl/internal/mocks/vault"
)

// The steps that stand in for the platform's dependencies (devctl.yaml's
// dependencies): the stand-ins' images are made beside the cluster and the
// services' builds, delivered like the services' images, the
// platform-mocks release is installed with the declared dependencies only,
// and each dependency is checked at the protocol level, in parallel,
// before the services deploy. Credentials stay in the cluster: the checks
// read them from Secrets into memory and nothing here logs them.

// Step names.
const (
	StepMockImages = "mock-images"
	StepMocks      = "mocks"
	// StepDependencies groups the per-dependency checks, named
	// StepCheckPrefix + dependency ("check-postgres").
	StepDependencies = "dependencies"
	StepCheckPrefix  = "check-"
)

// mockCheckTimeout bounds how long a dependency may take to answer.
const mockCheckTimeout = 3 * time.Minute

var (
	mockImagesStep   = mockStep{step{StepMockImages, api.PhaseBuilding, runMockImages}}
	mocksStep        = mockStep{step{StepMocks, api.PhaseDeploying, runMocks}}
	dependenciesStep = mockStep{step{StepDependencies, api.PhaseWaiting, runDependencyChecks}}
)

// mockStep is left out of the runs of a project that declares no
// dependencies, so their step lists do not change.
type mockStep struct{ step }

func (mockStep) absent(r *Run) bool {
	return r.project == nil || len(r.project.AllDependencies()) == 0
}

// Platform is what the mock steps need beyond the other collaborators.
type Platform interface {
	// StandInImage returns the stand-ins' image: the static devctl-mocks
	// binary FROM scratch, made without a Docker build, with an archive
	// for Environments.LoadImages.
	StandInImage(ctx context.Context) (ref string, archive func() (io.ReadCloser, error), err error)
	// HasImage reports whether the local engine holds ref.
	HasImage(ctx context.Context, ref string) (bool, error)
	// Check waits until dependency dep of the release in ns answers at
	// the protocol level (SELECT 1, sys/health and the token, ListBuckets,
	// CRDs served) and returns a detail without credentials.
	Check(ctx context.Context, kubeconfig, ns, release, dep string) (string, error)
}

// mockState is what the mock steps of one run share.
type mockState struct {
	deps          []string
	image         string // the stand-ins' image
	archive       func() (io.ReadCloser, error)
	postgresImage string
}

// delivered remembers which stand-in images this daemon loaded into which
// cluster (by kubeconfig), so a warm up does not load a 300 MB PostgreSQL
// image again. A new cluster, or a daemon restart, loads them once more.
var delivered = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

func deliveredKey(kubeconfig, ref string) string { return kubeconfig + "\x00" + ref }

func (run *Run) mockState() *mockState {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.mocks == nil {
		run.mocks = &mockState{}
	}
	return run.mocks
}

func runMockImages(ctx context.Context, r *Run) (string, error) {
	deps := r.project.AllDependencies()
	if len(deps) == 0 {
		return skip("no dependencies declared")
	}
	pl := r.r.deps.Platform
	if pl == nil {
		return "", errors.New("this devctl cannot install platform stand-ins (no platform bound)")
	}
	st := r.mockState()
	st.deps = deps
	var parts []string
	needImage := slices.ContainsFunc(deps, func(d string) bool { return d == config.DepSecrets || d == config.DepS3 })
	if needImage {
		ref, archive, err := pl.StandInImage(ctx)
		if err != nil {
			return "", err
		}
		st.image, st.archive = ref, archive
		parts = append(parts, ref)
	}
	if slices.Contains(deps, config.DepPostgres) {
		img := r.project.PostgresImage()
		ok, err := pl.HasImage(ctx, img)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", &configError{fmt.Errorf("the PostgreSQL image %s is not in the Docker engine: `docker pull %s`, "+
				"or without a registry build one with e2e/images/postgres.sh and set mocks.postgres.image (or $%s) to the name it prints",
				img, img, config.PostgresImageEnv)}
		}
		st.postgresImage = img
		parts = append(parts, img)
	}
	if len(parts) == 0 {
		return skip("%s need no image", strings.Join(deps, ", "))
	}
	return strings.Join(parts, ", "), nil
}

func runMocks(ctx context.Context, r *Run) (string, error) {
	st := r.mockState()
	if len(st.deps) == 0 {
		return skip("no dependencies declared")
	}
	loaded, err := deliverMockImages(ctx, r, st)
	if err != nil {
		return "", err
	}
	if slices.Contains(st.deps, config.DepSecrets) {
		if _, err := os.Stat(r.project.SecretsFile()); err != nil {
			r.logf(StepMocks, "", api.SourceConfig, api.LevelWarn,
				"no %s: the secrets store starts empty, and an ExternalSecret reading it stays unsynced; write it as path: {KEY: value} (git ignores it)",
				r.project.SecretsFile())
		}
	}
	vals, err := mockValues(r.project, st)
	if err != nil {
		return "", &configError{err}
	}
	ch, err := charts.PlatformMocks()
	if err != nil {
		return "", err
	}
	rel := &goldenpath.Release{Name: mocks.Release, Namespace: r.namespace, Chart: ch, Values: vals}
	if rel.ChartDigest, err = helm.ChartDigest(ch); err != nil {
		return "", err
	}
	if rel.ValuesDigest, err = helm.ValuesDigest(vals); err != nil {
		return "", err
	}
	start := time.Now()
	res, err := r.r.deps.Releases.Deploy(ctx, r.kubeconfig, rel)
	if err != nil {
		return "", fmt.Errorf("install the platform stand-ins: %w", err)
	}
	detail := fmt.Sprintf("%s %s (revision %d, %.1fs): %s", mocks.Release, res.Outcome(), res.Revision, time.Since(start).Seconds(), strings.Join(st.deps, ", "))
	if len(loaded) > 0 {
		detail += "; loaded " + strings.Join(loaded, ", ")
	}
	return detail, nil
}

// deliverMockImages loads the stand-ins' images into the environment the
// way the services' images are delivered (at once), unless this daemon
// already did; it returns what it loaded, with how long each took.
func deliverMockImages(ctx context.Context, r *Run, st *mockState) ([]string, error) {
	type image struct {
		ref     string
		archive func() (io.ReadCloser, error)
	}
	var todo []image
	if st.image != "" {
		todo = append(todo, image{st.image, st.archive})
	}
	if st.postgresImage != "" {
		ref := st.postgresImage
		todo = append(todo, image{ref, func() (io.ReadCloser, error) { return r.r.deps.Images.Save(ctx, ref) }})
	}
	loaded := make([]string, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, im := range todo {
		key := deliveredKey(r.kubeconfig, im.ref)
		delivered.Lock()
		done := delivered.m[key] && !r.newCluster
		delivered.Unlock()
		if done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := r.r.deps.Environments.LoadImages(ctx, r.Env, r.Spec.Provider, im.archive); err != nil {
				errs[i] = fmt.Errorf("load %s: %w", im.ref, err)
				return
			}
			delivered.Lock()
			delivered.m[key] = true
			delivered.Unlock()
			loaded[i] = fmt.Sprintf("%s (%.1fs)", im.ref, time.Since(start).Seconds())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(loaded, func(s string) bool { return s == "" }), nil
}

// mockValues are the platform-mocks chart's values for the project. The
// secrets seed is read from the project's file (its values go to the
// cluster only, in the release).
func mockValues(p *goldenpath.Project, st *mockState) (map[string]any, error) {
	c := mocks.Config{
		ImageTag: tagOf(st.image), Team: p.Team, Owner: p.Owner, CostCenter: p.CostCenter,
		PostgresImage: st.postgresImage, Bucket: p.Bucket(),
	}
	for _, d := range st.deps {
		c.Deps = append(c.Deps, mocks.Dependency(d))
	}
	if slices.Contains(st.deps, config.DepSecrets) {
		f := p.SecretsFile()
		if _, err := os.Stat(f); err == nil {
			seed, err := vault.LoadSeed(f)
			if err != nil {
				return nil, fmt.Errorf("mocks.secrets.file: %w", err)
			}
			c.VaultSeed = seed
		}
	}
	if slices.Contains(st.deps, config.DepPostgres) {
		sql, err := p.PostgresSeed()
		if err != nil {
			return nil, err
		}
		c.PostgresSeedSQL = sql
	}
	return mocks.Values(c), nil
}

func tagOf(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return ""
}

// runDependencyChecks checks every declared dependency at once, each as a
// timed step of its own, so the step list shows how long each took to
// answer after the install.
func runDependencyChecks(ctx context.Context, r *Run) (string, error) {
	st := r.mockState()
	if len(st.deps) == 0 {
		return skip("no dependencies declared")
	}
	ctx, cancel := context.WithTimeout(ctx, mockCheckTimeout)
	defer cancel()
	g := make(parallel, len(st.deps))
	for i, d := range st.deps {
		g[i] = step{StepCheckPrefix + d, api.PhaseWaiting, func(ctx context.Context, r *Run) (string, error) {
			return r.r.deps.Platform.Check(ctx, r.kubeconfig, r.namespace, mocks.Release, d)
		}}
	}
	start := time.Now()
	if err := r.doParallel(ctx, g); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s ready in %.1fs", strings.Join(st.deps, ", "), time.Since(start).Seconds()), nil
}
