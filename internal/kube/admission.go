package kube

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
