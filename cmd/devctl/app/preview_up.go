package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/preview"
	"github.com/devctl/devctl/internal/status"
)

type previewUpOptions struct {
	pr          int
	sha         string
	ttl         time.Duration
	maxPreviews int
	createdBy   string
	file        string
	branch      string
	output      string
	summaryFile string
	commentFile string
	wake        time.Duration
}

func newPreviewUpCommand(g *globalOptions, s Streams, o *previewOptions) *cobra.Command {
	u := &previewUpOptions{}
	cmd := &cobra.Command{
		Use:   "up --pr N",
		Short: "Bring a pull request's preview up on the host cluster and print its URL",
		Long: `Bring up the preview of a pull request: a vcluster in its own namespace of the host
cluster (--kubeconfig/--context), the service built, delivered, rendered with the
golden-path chart, policy-checked, deployed and answering. The run goes through the
devctl daemon (started when needed) and prints each phase with its time, as ` + "`devctl up --ci`" + `.

The namespace is labelled devctl.dev/{repo,pr,sha,created-by,expires-at}; every up sets
expires-at to now + --ttl again, so the expiry counts from the last push. A paused
preview is woken first. A new preview is refused with exit code 3 when the repository
already has --max-previews running ones.

--summary-file gets the result as Markdown (URL, phases, expiry) appended, as GitHub's
step summary expects; --comment-file gets a PR comment body whose first line is a
marker (<!-- devctl-preview:ENV -->) to find and edit the previous comment by.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPreviewUp(cmd.Context(), g, s, o, u) },
	}
	f := cmd.Flags()
	addPRFlag(cmd, &u.pr)
	f.StringVar(&u.sha, "sha", "", "the commit being previewed (in GitHub Actions: ${{ github.event.pull_request.head.sha }}; default: the project's HEAD)")
	f.DurationVar(&u.ttl, "ttl", preview.DefaultTTL, "delete the preview this long after the last up (by `devctl preview gc`)")
	f.IntVar(&u.maxPreviews, "max-previews", 10, "the most running previews one repository may have (paused ones do not count; 0: no cap)")
	f.StringVar(&u.createdBy, "created-by", firstEnv("GITHUB_ACTOR", "USER"), "who asked for it (env GITHUB_ACTOR, USER)")
	f.StringVarP(&u.file, "file", "f", "", "path of devctl.yaml (default: found in the project directory or its parents)")
	f.StringVar(&u.branch, "branch", os.Getenv("GITHUB_HEAD_REF"), "the PR's branch (env GITHUB_HEAD_REF; default: pr-N)")
	f.StringVarP(&u.output, "output", "o", "text", "text, or json: the result as JSON on stdout (the phases go to stderr)")
	f.StringVar(&u.summaryFile, "summary-file", os.Getenv("GITHUB_STEP_SUMMARY"), "append the result as Markdown to this file (env GITHUB_STEP_SUMMARY)")
	f.StringVar(&u.commentFile, "comment-file", "", "write a PR comment body (Markdown) to this file")
	f.DurationVar(&u.wake, "wake-timeout", 5*time.Minute, "how long to wait for a paused preview's vcluster to be ready again")
	f.Bool("ci", true, "print timed phases without animation (always on; accepted for symmetry with `devctl up --ci`)")
	return cmd
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func runPreviewUp(ctx context.Context, g *globalOptions, s Streams, o *previewOptions, u *previewUpOptions) error {
	if u.output != "text" && u.output != "json" {
		return previewError(fmt.Errorf("%w: unknown output format %q: use -o text or -o json", preview.ErrUsage, u.output))
	}
	progress := s.Out
	if u.output == "json" {
		progress = s.ErrOut
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	rep := &preview.Report{PR: u.pr}
	err := previewUp(ctx, g, progress, o, u, rep)
	rep.Total = time.Since(start)
	rep.OK = err == nil
	rep.ExitCode = preview.ExitCode(err)
	if err != nil {
		rep.Error = err.Error()
		var failed *envFailedError
		if errors.As(err, &failed) {
			rep.ExitCode = preview.ExitFailed
		}
	}
	if werr := writePreviewReport(rep, u); werr != nil {
		fmt.Fprintf(s.ErrOut, "devctl: %v\n", werr)
		if err == nil {
			err = werr
		}
	}
	if u.output == "json" {
		if jerr := writeJSONOut(s.Out, rep); jerr != nil && err == nil {
			err = jerr
		}
	}
	return previewError(err)
}

// envFailedError is an environment whose run failed: its message and
// diagnostics were printed.
type envFailedError struct {
	name, message string
}

func (e *envFailedError) Error() string {
	return fmt.Sprintf("preview %s failed: %s", e.name, e.message)
}

// previewUp does the work of `preview up`, filling rep as it goes so that a
// failure is reported with the phases that ran.
func previewUp(ctx context.Context, g *globalOptions, w io.Writer, o *previewOptions, u *previewUpOptions, rep *preview.Report) error {
	st := status.New(w, true)
	start := time.Now()
	if u.pr <= 0 {
		return fmt.Errorf("%w: --pr must be the pull request's number (got %d); in GitHub Actions use ${{ github.event.pull_request.number }}", preview.ErrUsage, u.pr)
	}
	repo, err := o.repository(ctx)
	if err != nil {
		return err
	}
	dir, err := o.projectDir()
	if err != nil {
		return err
	}
	sha := u.sha
	if sha == "" {
		if info, gerr := git.Describe(ctx, dir); gerr == nil {
			sha = info.SHA
		}
	}
	req := preview.Request{Repo: repo, PR: u.pr, SHA: sha, CreatedBy: u.createdBy, TTL: u.ttl, Now: time.Now()}
	rep.Env, rep.Repo, rep.SHA, rep.ExpiresAt = req.Env(), repo, sha, req.ExpiresAt()
	if err := req.Validate(); err != nil {
		return err
	}
	kc, kctx, err := o.hostFile()
	if err != nil {
		return err
	}
	rep.Host = kctx

	// host: reach it, find this PR's preview, apply the cap.
	phase := startPhase(st, "host")
	h, err := preview.Connect(kc, kctx)
	if err != nil {
		return phase.fail(rep, err)
	}
	list, err := h.List(ctx, repo)
	if err != nil {
		return phase.fail(rep, err)
	}
	var existing *preview.Preview
	for i := range list {
		if list[i].PR == u.pr {
			existing = &list[i]
		}
	}
	if existing == nil {
		if err := preview.CheckCap(list, repo, u.pr, u.maxPreviews); err != nil {
			return phase.fail(rep, err)
		}
	}
	detail := fmt.Sprintf("%s: new preview, %d other(s) of %s", kctx, len(list), repo)
	if existing != nil {
		detail = fmt.Sprintf("%s: updating %s in namespace %s", kctx, existing.Env, existing.Namespace)
		rep.Namespace = existing.Namespace
	}
	phase.done(rep, detail)

	// wake: a paused preview is scaled back up before the daemon needs it.
	if existing != nil && existing.Paused {
		phase := startPhase(st, "wake")
		names, err := h.Resume(ctx, *existing, u.wake)
		if err != nil {
			return phase.fail(rep, err)
		}
		phase.done(rep, fmt.Sprintf("resumed StatefulSet %v", names))
	}

	// The daemon runs the same steps as `devctl up`, on a vcluster.
	ref := api.ProjectRef{Dir: dir, Name: req.Env(), Branch: u.branch}
	if ref.Branch == "" {
		ref.Branch = fmt.Sprintf("pr-%d", u.pr)
	}
	if u.file != "" {
		if ref.Config, err = filepath.Abs(u.file); err != nil {
			return err
		}
	}
	c, err := g.ensureDaemon(ctx, func() { st.Printf("starting the devctl daemon ...\n") })
	if err != nil {
		return err
	}
	events, streamErr, err := c.Events(ctx, req.Env())
	if err != nil {
		return err
	}
	env, err := c.Up(ctx, api.UpRequest{
		ProjectRef: ref,
		Provider:   api.ProviderVCluster,
		Host:       &api.HostCluster{Kubeconfig: kc, Context: kctx},
		Labels:     req.Labels(),
		Watch:      ptr(false),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "preview %s (%s #%d", env.Name, repo, u.pr)
	if sha != "" {
		fmt.Fprintf(w, " at %s", shortSHA(sha))
	}
	fmt.Fprintf(w, ", generation %d) on %s\n", env.Generation, kctx)
	final, err := follow(ctx, events, streamErr, env.Generation, st, g.verbose)
	if final != nil && final.Status.Run != nil {
		for _, step := range final.Status.Run.Steps {
			rep.Phases = append(rep.Phases, preview.Phase{Name: step.Name, Duration: step.Duration, Status: string(step.Status), Detail: step.Detail})
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w after %s waiting for preview %s to be ready (`devctl status %s` shows where it is)", preview.ErrTimeout, o.timeout, req.Env(), req.Env())
		}
		return err
	}
	if final.Status.Phase != api.PhaseReady {
		if final.Status.Diagnostics != "" {
			fmt.Fprintf(w, "\n%s", final.Status.Diagnostics)
		}
		return &envFailedError{name: final.Name, message: final.Status.Message}
	}
	for _, svc := range final.Status.Services {
		if svc.URL != "" {
			rep.URLs = append(rep.URLs, preview.ServiceURL{Service: svc.Name, URL: svc.URL})
		}
	}

	// label: the expiry counts from this push; the URL is recorded for ls.
	phase = startPhase(st, "label")
	ns, err := h.FindEnv(ctx, req.Env())
	if err != nil {
		return phase.fail(rep, err)
	}
	if ns == "" {
		return phase.fail(rep, fmt.Errorf("no namespace on %s is labelled %s=%s: the vcluster provider did not label it, so gc and ls cannot see this preview", kctx, preview.LabelEnv, req.Env()))
	}
	rep.Namespace = ns
	var ann map[string]string
	if len(rep.URLs) > 0 {
		ann = map[string]string{preview.AnnotationURL: rep.URLs[0].URL}
	}
	if err := h.Label(ctx, ns, req.Labels(), ann); err != nil {
		return phase.fail(rep, err)
	}
	phase.done(rep, "namespace "+ns+", expires "+rep.ExpiresAt.Format(time.RFC3339))

	fmt.Fprintf(w, "\npreview %s is ready (%.1fs)\n", req.Env(), time.Since(start).Seconds())
	for _, u := range rep.URLs {
		fmt.Fprintf(w, "  %-16s %s\n", u.Service, u.URL)
	}
	fmt.Fprintf(w, "  expires %s (each up extends it)\n", rep.ExpiresAt.Format(time.RFC3339))
	return nil
}

// cliPhase is a phase of `preview up` that runs in the command itself.
type cliPhase struct {
	st      *status.Status
	name    string
	started time.Time
}

func startPhase(st *status.Status, name string) *cliPhase {
	st.Start(name)
	return &cliPhase{st: st, name: name, started: time.Now()}
}

func (p *cliPhase) done(rep *preview.Report, detail string) {
	d := time.Since(p.started)
	p.st.Step(true, p.name, d, detail)
	rep.Phases = append(rep.Phases, preview.Phase{Name: p.name, Duration: d, Status: string(api.StepDone), Detail: detail})
}

func (p *cliPhase) fail(rep *preview.Report, err error) error {
	d := time.Since(p.started)
	p.st.Step(false, p.name, d, "")
	rep.Phases = append(rep.Phases, preview.Phase{Name: p.name, Duration: d, Status: string(api.StepFailed)})
	return err
}

// writePreviewReport writes the step summary and the PR comment.
func writePreviewReport(rep *preview.Report, u *previewUpOptions) error {
	if u.summaryFile != "" {
		f, err := os.OpenFile(u.summaryFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("write the step summary: %w", err)
		}
		_, werr := io.WriteString(f, rep.Summary())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("write the step summary %s: %w", u.summaryFile, werr)
		}
	}
	if u.commentFile != "" {
		if err := os.WriteFile(u.commentFile, []byte(rep.Comment()), 0o644); err != nil {
			return fmt.Errorf("write the PR comment: %w", err)
		}
	}
	return nil
}

func newPreviewDownCommand(g *globalOptions, s Streams, o *previewOptions) *cobra.Command {
	var (
		pr   int
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "down --pr N",
		Short: "Delete a pull request's preview: its vcluster and its namespace, and wait until they are gone",
		Long: `Delete a pull request's preview. When this machine's daemon runs it, the daemon deletes
it (closing its port-forwards); then its namespace on the host is deleted, with the
vcluster, its PVC and ConfigMaps, and the command waits until the namespace is gone.
Deleting a preview that does not exist succeeds and says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			start := time.Now()
			if pr <= 0 {
				return previewError(fmt.Errorf("%w: --pr must be a pull request number (got %d)", preview.ErrUsage, pr))
			}
			repo, err := o.repository(ctx)
			if err != nil {
				return previewError(err)
			}
			env := preview.EnvName(repo, pr)
			// The host's labels first: the daemon's delete removes the
			// namespace that records them.
			h, p, findErr := o.findPR(ctx, pr)
			if findErr != nil && !errors.Is(findErr, preview.ErrNotFound) {
				return previewError(findErr)
			}
			knew, err := downInDaemon(ctx, g, s.Out, env)
			if err != nil {
				return previewError(err)
			}
			if findErr != nil {
				if !knew {
					fmt.Fprintf(s.Out, "no preview of %s #%d on %s: nothing to delete\n", repo, pr, h.Name)
				}
				return nil
			}
			if err := h.Delete(ctx, *p, wait); err != nil {
				return previewError(err)
			}
			fmt.Fprintf(s.Out, "deleted preview %s (%s #%d): namespace %s is gone (%.1fs)\n", p.Env, repo, pr, p.Namespace, time.Since(start).Seconds())
			return nil
		},
	}
	addPRFlag(cmd, &pr)
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the namespace to be gone")
	return cmd
}

// downInDaemon deletes env through this machine's daemon when it runs and
// knows env. It never starts a daemon: the host's labels are enough to
// delete a preview another job made.
func downInDaemon(ctx context.Context, g *globalOptions, w io.Writer, env string) (bool, error) {
	c := g.client()
	if _, err := c.Get(ctx, env); err != nil {
		return false, nil //nolint:nilerr // no daemon, or it does not know env: the host delete follows
	}
	events, streamErr, err := c.Events(ctx, env)
	if err != nil {
		return false, err
	}
	e, err := c.Down(ctx, env)
	if errors.Is(err, api.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fmt.Fprintf(w, "deleting preview %s through the daemon ...\n", env)
	detail, err := followDown(events, env, e.Generation)
	if err != nil {
		if serr := streamErr(); serr != nil && detail == "" {
			return true, serr
		}
		return true, err
	}
	fmt.Fprintf(w, "%s\n", detail)
	return true, nil
}
