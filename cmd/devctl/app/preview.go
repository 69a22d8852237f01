package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/preview"
)

// previewOptions are the flags every `devctl preview` command has: the
// host cluster and the repository.
type previewOptions struct {
	kubeconfig string
	context    string
	repo       string
	dir        string
	timeout    time.Duration
}

func newPreviewCommand(g *globalOptions, s Streams) *cobra.Command {
	o := &previewOptions{}
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Per-pull-request preview environments on a shared host cluster (for CI)",
		Long: `Preview environments: one vcluster per pull request in a namespace of a shared host
cluster (any conformant Kubernetes), named after the PR number, labelled with the
repository, PR, commit, author and expiry, and garbage-collected by those labels.
The labels on the host are the only record, so every command works from any CI job
that can reach the host.

  devctl preview up --pr 123       build, deploy and print the URL (extends the expiry)
  devctl preview down --pr 123     delete it and everything in its namespace
  devctl preview ls                the previews on the host
  devctl preview gc                delete the expired ones
  devctl preview pause --pr 123    scale its vcluster to zero until the next up

Exit codes: 0 ok; 1 the preview failed (build, policy, deploy, readiness); 2 bad
flags; 3 the repository's cap of running previews is reached; 4 a wait timed out;
5 the host cluster did not answer or refused (kubeconfig, context, RBAC); 6 no
preview of that PR. docs/previews.md has a GitHub Actions workflow and the RBAC.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// Bad flags exit with ExitUsage, as documented.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return previewError(fmt.Errorf("%w: %w", preview.ErrUsage, err))
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the host cluster (default: $KUBECONFIG, then ~/.kube/config)")
	pf.StringVar(&o.context, "context", "", "context of the host cluster in the kubeconfig (default: its current context)")
	pf.StringVar(&o.repo, "repo", os.Getenv("GITHUB_REPOSITORY"), "the repository, owner/name (env GITHUB_REPOSITORY; default: the git remote origin)")
	pf.StringVarP(&o.dir, "dir", "C", "", "the project directory (default: the current directory)")
	pf.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long (every wait says what it waited for)")
	cmd.AddCommand(
		newPreviewUpCommand(g, s, o),
		newPreviewDownCommand(g, s, o),
		newPreviewLsCommand(s, o),
		newPreviewGCCommand(s, o),
		newPreviewPauseCommand(s, o),
		newPreviewResumeCommand(s, o),
	)
	return cmd
}

// previewError gives err the exit code preview.ExitCode assigns it.
func previewError(err error) error {
	if err == nil {
		return nil
	}
	var ee exitError
	if errors.As(err, &ee) {
		return err
	}
	return codedError{code: preview.ExitCode(err), err: err}
}

// codedError is an error printed once, with an exit code of its own.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

// projectDir is the absolute project directory.
func (o *previewOptions) projectDir() (string, error) {
	dir := o.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	return filepath.Abs(dir)
}

// repository is --repo, else the git remote origin of the project.
func (o *previewOptions) repository(ctx context.Context) (string, error) {
	if o.repo != "" {
		return preview.NormalizeRepo(o.repo), nil
	}
	dir, err := o.projectDir()
	if err != nil {
		return "", err
	}
	url, err := git.OriginURL(ctx, dir)
	if err != nil || url == "" {
		return "", fmt.Errorf("%w: the repository is unknown: pass --repo owner/name (GITHUB_REPOSITORY is not set and %s has no git remote origin)", preview.ErrUsage, dir)
	}
	return preview.NormalizeRepo(url), nil
}

// hostFile resolves the kubeconfig to one absolute file and the context to
// a name, so that this command and the daemon talk to the same host.
func (o *previewOptions) hostFile() (kubeconfig, kubeContext string, err error) {
	kubeconfig = o.kubeconfig
	if kubeconfig == "" {
		if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
			paths := filepath.SplitList(env)
			if len(paths) > 1 {
				return "", "", fmt.Errorf("%w: $KUBECONFIG lists %d files; pass the host cluster's with --kubeconfig", preview.ErrUsage, len(paths))
			}
			kubeconfig = paths[0]
		} else {
			kubeconfig = clientcmd.RecommendedHomeFile
		}
	}
	if kubeconfig, err = filepath.Abs(kubeconfig); err != nil {
		return "", "", err
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", "", fmt.Errorf("%w: read the host's kubeconfig %s: %w (pass --kubeconfig)", preview.ErrHost, kubeconfig, err)
	}
	kubeContext = o.context
	if kubeContext == "" {
		kubeContext = cfg.CurrentContext
	}
	if _, ok := cfg.Contexts[kubeContext]; !ok {
		names := make([]string, 0, len(cfg.Contexts))
		for n := range cfg.Contexts {
			names = append(names, n)
		}
		return "", "", fmt.Errorf("%w: kubeconfig %s has no context %q (it has: %s); pass --context", preview.ErrHost, kubeconfig, kubeContext, strings.Join(names, ", "))
	}
	return kubeconfig, kubeContext, nil
}

// host connects to the host cluster.
// list reaches the host and lists its previews (of --repo, when given).
func (o *previewOptions) list(ctx context.Context) (*preview.Host, []preview.Preview, error) {
	h, err := o.host()
	if err != nil {
		return nil, nil, err
	}
	list, err := h.List(ctx, o.explicitRepo())
	return h, list, err
}

func (o *previewOptions) host() (*preview.Host, error) {
	kc, kctx, err := o.hostFile()
	if err != nil {
		return nil, err
	}
	return preview.Connect(kc, kctx)
}

func addPRFlag(cmd *cobra.Command, pr *int) {
	cmd.Flags().IntVar(pr, "pr", 0, "the pull request's number, required (in GitHub Actions: ${{ github.event.pull_request.number }})")
}

// findPR connects to the host and finds the repository's preview of pr.
func (o *previewOptions) findPR(ctx context.Context, pr int) (*preview.Host, *preview.Preview, error) {
	if pr <= 0 {
		return nil, nil, fmt.Errorf("%w: --pr must be a pull request number (got %d)", preview.ErrUsage, pr)
	}
	repo, err := o.repository(ctx)
	if err != nil {
		return nil, nil, err
	}
	h, err := o.host()
	if err != nil {
		return nil, nil, err
	}
	p, err := h.Find(ctx, repo, pr)
	return h, p, err
}

func newPreviewPauseCommand(s Streams, o *previewOptions) *cobra.Command {
	var (
		pr   int
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pause --pr N",
		Short: "Scale a preview's vcluster to zero (its state is kept; the next up or resume wakes it)",
		Long: `Scale a preview's vcluster to zero replicas, as ` + "`vcluster pause`" + ` does: its StatefulSet's
replicas are recorded in an annotation and set to 0, and the pods it synced into the
host namespace are deleted. Its PVC (the virtual cluster's state) stays. A paused
preview does not count against --max-previews. The command returns once the vcluster's
pods are gone (--wait). Pausing a paused preview changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			h, p, err := o.findPR(ctx, pr)
			if err != nil {
				return previewError(err)
			}
			scaled, err := h.Pause(ctx, *p, wait)
			if err != nil {
				return previewError(err)
			}
			if len(scaled) == 0 {
				fmt.Fprintf(s.Out, "preview %s (PR #%d) is already paused\n", p.Env, p.PR)
				return nil
			}
			fmt.Fprintf(s.Out, "paused preview %s (PR #%d): scaled StatefulSet %s in %s to 0\n", p.Env, p.PR, strings.Join(scaled, ", "), p.Namespace)
			return nil
		},
	}
	addPRFlag(cmd, &pr)
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the vcluster's pods to be gone (0: do not wait)")
	return cmd
}

func newPreviewResumeCommand(s Streams, o *previewOptions) *cobra.Command {
	var (
		pr   int
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "resume --pr N",
		Short: "Scale a paused preview's vcluster back up and wait until it is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			h, p, err := o.findPR(ctx, pr)
			if err != nil {
				return previewError(err)
			}
			start := time.Now()
			resumed, err := h.Resume(ctx, *p, wait)
			if err != nil {
				return previewError(err)
			}
			if len(resumed) == 0 {
				fmt.Fprintf(s.Out, "preview %s (PR #%d) is not paused\n", p.Env, p.PR)
				return nil
			}
			fmt.Fprintf(s.Out, "resumed preview %s (PR #%d): StatefulSet %s in %s ready (%.1fs)\n", p.Env, p.PR, strings.Join(resumed, ", "), p.Namespace, time.Since(start).Seconds())
			return nil
		},
	}
	addPRFlag(cmd, &pr)
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the vcluster to be ready (0: do not wait)")
	return cmd
}

func newPreviewLsCommand(s Streams, o *previewOptions) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the previews on the host cluster (all repositories unless --repo)",
		Long: `List the previews on the host cluster from the labels of their namespaces, so it
works from any CI job: repository, PR, state (Running, Paused, Expired, Terminating),
commit, last push and expiry. Only --repo narrows it to one repository.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return previewError(fmt.Errorf("%w: %w", preview.ErrUsage, err))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			h, list, err := o.list(ctx)
			if err != nil {
				return previewError(err)
			}
			now := time.Now()
			if out.format == "json" {
				type item struct {
					preview.Preview
					State preview.State `json:"state"`
				}
				items := make([]item, len(list))
				for i, p := range list {
					items[i] = item{Preview: p, State: p.State(now)}
				}
				return writeJSONOut(s.Out, items)
			}
			if len(list) == 0 {
				fmt.Fprintf(s.Out, "no previews on %s\n", h.Name)
				return nil
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPO\tPR\tSTATE\tSHA\tPUSHED\tEXPIRES\tNAMESPACE\tURL")
			for _, p := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Repo, p.PR, p.State(now), orDash(shortSHA(p.SHA)),
					ago(now, p.LastPush()), until(now, p.ExpiresAt), p.Namespace, orDash(p.URL))
			}
			return tw.Flush()
		},
	}
	out.add(cmd)
	return cmd
}

// explicitRepo is the repository given by --repo or GITHUB_REPOSITORY;
// ls and gc look at every repository otherwise.
func (o *previewOptions) explicitRepo() string {
	if o.repo == "" {
		return ""
	}
	return preview.NormalizeRepo(o.repo)
}

func newPreviewGCCommand(s Streams, o *previewOptions) *cobra.Command {
	var (
		olderThan time.Duration
		dryRun    bool
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete expired previews (by label only) and everything in their namespaces",
		Long: `Delete the previews whose expiry (last push + --ttl) has passed and, with --older-than,
those last pushed longer ago than that. A preview is a namespace labelled
devctl.dev/managed-by=devctl with devctl.dev/repo and devctl.dev/pr: a namespace without
those labels is never touched. Deleting the namespace deletes the vcluster and what it
leaves behind (its PVC, its ConfigMaps, the pods it synced); gc waits until each
namespace is gone. All repositories unless --repo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < 0 {
				return previewError(fmt.Errorf("%w: --older-than must not be negative", preview.ErrUsage))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			h, list, err := o.list(ctx)
			if err != nil {
				return previewError(err)
			}
			now := time.Now()
			doomed := preview.Collectable(list, now, olderThan)
			if len(doomed) == 0 {
				fmt.Fprintf(s.Out, "nothing to delete: %d preview(s) on %s, none expired\n", len(list), h.Name)
				return nil
			}
			var errs []error
			for _, p := range doomed {
				why := "expired " + ago(now, p.ExpiresAt)
				switch {
				case p.Terminating:
					why = "already being deleted"
				case !p.Expired(now):
					why = "last pushed " + ago(now, p.LastPush())
				}
				if dryRun {
					fmt.Fprintf(s.Out, "would delete %s (%s #%d, %s): namespace %s\n", p.Env, p.Repo, p.PR, why, p.Namespace)
					continue
				}
				start := time.Now()
				if err := h.Delete(ctx, p, wait); err != nil {
					fmt.Fprintf(s.ErrOut, "could not delete %s (%s #%d): %v\n", p.Env, p.Repo, p.PR, err)
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(s.Out, "deleted %s (%s #%d, %s): namespace %s (%.1fs)\n", p.Env, p.Repo, p.PR, why, p.Namespace, time.Since(start).Seconds())
			}
			if len(errs) > 0 {
				return previewError(fmt.Errorf("%d of %d preview(s) not deleted: %w", len(errs), len(doomed), errors.Join(errs...)))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "also delete previews last pushed longer ago than this (e.g. 72h)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, delete nothing")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for each namespace to be gone")
	return cmd
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return humanDuration(now.Sub(t)) + " ago"
}

func until(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if !now.Before(t) {
		return "expired " + humanDuration(now.Sub(t)) + " ago"
	}
	return "in " + humanDuration(t.Sub(now))
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
