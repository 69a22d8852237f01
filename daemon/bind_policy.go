package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/policy"
)

// policiesAdapter keeps one compiled engine per project policy settings, so
// every render after the first is checked without compiling again.
type policiesAdapter struct {
	log     *slog.Logger
	mu      sync.Mutex
	engines map[string]*policy.Engine
	clients kube.Clients
}

func newPoliciesAdapter(log *slog.Logger) *policiesAdapter {
	return &policiesAdapter{log: log, engines: map[string]*policy.Engine{}}
}

// EngineFor returns the (cached) engine for a project's policy settings.
func (a *policiesAdapter) engineFor(ctx context.Context, p *Project) (*policy.Engine, error) {
	o := PolicyOptions(p)
	key := fmt.Sprintf("%s|%s|%s|%s", o.RulesDir, o.WaiversFile, strings.Join(o.AllowedRegistries, ","), o.Namespace)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.engines[key]; ok {
		return e, nil
	}
	o.Logger = a.log
	e, err := policy.New(ctx, o)
	if err != nil {
		return nil, err
	}
	a.engines[key] = e
	return e, nil
}

// PolicyOptions are the policy engine options for a project.
func PolicyOptions(p *Project) policy.Options {
	o := policy.Options{Namespace: p.Name}
	if p.Config == nil {
		return o
	}
	pc := p.Config.Policy
	if pc.Rules != "" {
		o.RulesDir = filepath.Join(p.Dir, pc.Rules)
	}
	if pc.Waivers != "" {
		o.WaiversFile = filepath.Join(p.Dir, pc.Waivers)
	}
	o.AllowedRegistries = pc.AllowedRegistries
	return o
}

// GoldenPathSource lets findings point at the golden-path chart's templates.
func GoldenPathSource() *policy.ChartSource {
	sub, err := fs.Sub(charts.FS, charts.GoldenPathName)
	if err != nil {
		return nil
	}
	return &policy.ChartSource{FS: sub, Dir: charts.GoldenPathName}
}

func (a *policiesAdapter) Check(ctx context.Context, p *Project, manifest string) ([]api.Finding, error) {
	e, err := a.engineFor(ctx, p)
	if err != nil {
		return nil, err
	}
	docs, err := policy.ParseManifests("rendered", []byte(manifest))
	if err != nil {
		return nil, err
	}
	rep, err := e.Check(ctx, docs, GoldenPathSource())
	if err != nil {
		return nil, err
	}
	return APIFindings(rep), nil
}

// APIFindings converts a report to the API's findings, waived ones marked.
func APIFindings(r *policy.Report) []api.Finding {
	out := make([]api.Finding, 0, len(r.Findings)+len(r.Waived))
	conv := func(f policy.Finding, waived bool) api.Finding {
		return api.Finding{
			Rule: f.Rule, Severity: f.Severity.String(), Object: f.Object.String(), Path: f.Path,
			Source: f.Source.String(), Message: f.Message, Fix: f.Fix, Waived: waived,
		}
	}
	for _, f := range r.Findings {
		out = append(out, conv(f, false))
	}
	for _, f := range r.Waived {
		out = append(out, conv(f, true))
	}
	return out
}

// InstallAdmission applies the built-in rules that ValidatingAdmissionPolicy
// can express, bound to the service's namespace, so objects applied by hand
// are held to the same rules.
func (a *policiesAdapter) InstallAdmission(ctx context.Context, kubeconfig, namespace string) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	if err := ensureNamespaceLabels(ctx, c, namespace, policy.PodSecurityLabels()); err != nil {
		return fmt.Errorf("label namespace %s for Pod Security admission: %w", namespace, err)
	}
	objs, err := policy.AdmissionPolicies(namespace)
	if err != nil {
		return err
	}
	adm := c.Set.AdmissionregistrationV1()
	for _, o := range objs {
		switch o := o.(type) {
		case *admissionv1.ValidatingAdmissionPolicy:
			err = upsert(func() error {
				_, err := adm.ValidatingAdmissionPolicies().Create(ctx, o, metav1.CreateOptions{})
				return err
			}, func() error {
				cur, err := adm.ValidatingAdmissionPolicies().Get(ctx, o.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				o.ResourceVersion = cur.ResourceVersion
				_, err = adm.ValidatingAdmissionPolicies().Update(ctx, o, metav1.UpdateOptions{})
				return err
			})
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			err = upsert(func() error {
				_, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, o, metav1.CreateOptions{})
				return err
			}, func() error {
				cur, err := adm.ValidatingAdmissionPolicyBindings().Get(ctx, o.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				o.ResourceVersion = cur.ResourceVersion
				_, err = adm.ValidatingAdmissionPolicyBindings().Update(ctx, o, metav1.UpdateOptions{})
				return err
			})
		default:
			err = fmt.Errorf("unexpected admission object %T", o)
		}
		if err != nil {
			return fmt.Errorf("install admission policies in %s: %w", namespace, err)
		}
	}
	return nil
}

// ensureNamespaceLabels creates ns when missing and sets labels on it; the
// Pod Security admission plugin enforces the restricted level from them
// with the same code `devctl check` runs.
func ensureNamespaceLabels(ctx context.Context, c *kube.Client, ns string, labels map[string]string) error {
	nsc := c.Set.CoreV1().Namespaces()
	cur, err := nsc.Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		cur, err = nsc.Get(ctx, ns, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	changed := false
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	for k, v := range labels {
		if cur.Labels[k] != v {
			cur.Labels[k] = v
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err = nsc.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func upsert(create, update func() error) error {
	err := create()
	if apierrors.IsAlreadyExists(err) {
		return update()
	}
	return err
}
