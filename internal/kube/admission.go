package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// EnsureNamespace creates ns when missing and sets labels on it (leaving
// other labels alone).
func (c *Client) EnsureNamespace(ctx context.Context, ns string, labels map[string]string) error {
	nsc := c.Set.CoreV1().Namespaces()
	cur, err := nsc.Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		cur, err = nsc.Get(ctx, ns, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", ns, err)
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
	if _, err := nsc.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("label namespace %s: %w", ns, err)
	}
	return nil
}

// ApplyAdmission creates or updates ValidatingAdmissionPolicies and their
// bindings.
func (c *Client) ApplyAdmission(ctx context.Context, objs []runtime.Object) error {
	adm := c.Set.AdmissionregistrationV1()
	for _, o := range objs {
		var err error
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
			return fmt.Errorf("apply admission policies: %w", err)
		}
	}
	return nil
}

func upsert(create, update func() error) error {
	err := create()
	if apierrors.IsAlreadyExists(err) {
		return update()
	}
	return err
}

// IsPolicyDenial reports whether err is the API server's answer that a
// ValidatingAdmissionPolicy binding denied the request (as opposed to
// RBAC, a webhook or validation).
func IsPolicyDenial(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	s := st.Status()
	if s.Code != http.StatusForbidden && s.Code != http.StatusUnprocessableEntity && s.Code != http.StatusBadRequest {
		return false
	}
	return strings.Contains(s.Message, "ValidatingAdmissionPolicy '") && strings.Contains(s.Message, "denied request")
}

// AwaitAdmitted waits until admission lets each object through, as a
// server-side dry-run apply in namespace ns (nothing is persisted). The API
// server applies a changed ValidatingAdmissionPolicyBinding through its
// informers, moments after the write: objects a new waiver exempts are
// denied until then. Objects that cannot be probed (a kind the server does
// not serve yet, a CRD installed by the same release) are skipped; an
// object still denied after within is an error naming it and the denial.
func (c *Client) AwaitAdmitted(ctx context.Context, ns string, objs []*unstructured.Unstructured, within time.Duration) (int, error) {
	if len(objs) == 0 {
		return 0, nil
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return 0, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Set.Discovery()))
	deadline := time.Now().Add(within)
	probes := 0
	pending := slices.Clone(objs)
	for {
		var denied []*unstructured.Unstructured
		var last error
		for _, o := range pending {
			err := c.dryRunApply(ctx, dyn, mapper, ns, o)
			probes++
			if IsPolicyDenial(err) {
				denied = append(denied, o)
				last = err
			} else if ctx.Err() != nil {
				return probes, ctx.Err()
			}
		}
		if len(denied) == 0 {
			return probes, nil
		}
		if time.Now().After(deadline) {
			return probes, fmt.Errorf("admission still denies %s/%s %s after the waivers were applied: %w",
				denied[0].GetKind(), denied[0].GetName(), within, last)
		}
		pending = denied
		select {
		case <-ctx.Done():
			return probes, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dryRunApply sends o as a forced server-side apply with dry run: the
// request passes admission and persists nothing.
func (c *Client) dryRunApply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, ns string, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	obj := o.DeepCopy()
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(ns)
		}
		ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{
		FieldManager: "devctl-admission-probe", Force: true, DryRun: []string{metav1.DryRunAll}})
	return err
}
