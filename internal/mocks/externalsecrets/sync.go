package externalsecrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// ErrNotFound reports a Vault secret, or a property in it, that does not
// exist.
var ErrNotFound = errors.New("not found")

// vaultStore is a resolved vault provider: where to read and with what token.
type vaultStore struct {
	server, path, token string
}

// sync computes the Secret's data and writes it; it returns the Secret's name.
func (c *Controller) sync(ctx context.Context, es *unstructured.Unstructured, spec *externalSecret) (string, error) {
	vs, err := c.resolveStore(ctx, es.GetNamespace(), spec)
	if err != nil {
		return "", err
	}
	cache := map[remoteRef]map[string]any{}
	read := func(ref remoteRef) (map[string]any, error) {
		k := remoteRef{Key: ref.Key, Version: ref.Version}
		if m, ok := cache[k]; ok {
			return m, nil
		}
		m, err := c.readVault(ctx, vs, ref)
		if err != nil {
			return nil, err
		}
		cache[k] = m
		return m, nil
	}

	data := map[string][]byte{}
	for i, from := range spec.Spec.DataFrom {
		if from.Extract == nil {
			return "", fmt.Errorf("spec.dataFrom[%d]: only extract is supported by devctl's External Secrets stand-in", i)
		}
		m, err := read(*from.Extract)
		if err != nil {
			return "", fmt.Errorf("spec.dataFrom[%d].extract: %w", i, err)
		}
		for k, v := range m {
			data[k] = encode(v)
		}
	}
	for i, d := range spec.Spec.Data {
		if d.SecretKey == "" || d.RemoteRef.Key == "" {
			return "", fmt.Errorf("spec.data[%d]: secretKey and remoteRef.key are required", i)
		}
		m, err := read(d.RemoteRef)
		if err != nil {
			return "", fmt.Errorf("spec.data[%d] (%s): %w", i, d.SecretKey, err)
		}
		if d.RemoteRef.Property == "" {
			b, _ := json.Marshal(m)
			data[d.SecretKey] = b
			continue
		}
		v, ok := property(m, d.RemoteRef.Property)
		if !ok {
			return "", fmt.Errorf("spec.data[%d] (%s): property %q of %q: %w (it has %s)", i, d.SecretKey,
				d.RemoteRef.Property, d.RemoteRef.Key, ErrNotFound, strings.Join(keys(m), ", "))
		}
		data[d.SecretKey] = encode(v)
	}

	name := spec.Spec.Target.Name
	if name == "" {
		name = es.GetName()
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: es.GetNamespace(), Labels: map[string]string{ManagedLabel: "true"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if t := spec.Spec.Target.Template; t != nil {
		if err := applyTemplate(t, secret); err != nil {
			return "", err
		}
	}
	policy := spec.Spec.Target.CreationPolicy
	switch policy {
	case "", "Owner":
		secret.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: es.GetAPIVersion(), Kind: "ExternalSecret", Name: es.GetName(), UID: es.GetUID(),
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
	case "Orphan", "Merge":
	default:
		return "", fmt.Errorf("spec.target.creationPolicy %q: want Owner, Orphan or Merge", policy)
	}
	return name, c.writeSecret(ctx, es, secret, policy == "Merge")
}

// resolveStore reads the referenced SecretStore or ClusterSecretStore and
// the token it points at.
func (c *Controller) resolveStore(ctx context.Context, ns string, spec *externalSecret) (*vaultStore, error) {
	ref := spec.Spec.SecretStoreRef
	if ref.Name == "" {
		return nil, errors.New("spec.secretStoreRef.name is required")
	}
	var (
		u   *unstructured.Unstructured
		err error
	)
	switch ref.Kind {
	case "", "SecretStore":
		u, err = c.dyn.Resource(SecretStoresV1).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	case "ClusterSecretStore":
		u, err = c.dyn.Resource(ClusterSecretStoresV1).Get(ctx, ref.Name, metav1.GetOptions{})
	default:
		return nil, fmt.Errorf("spec.secretStoreRef.kind %q: want SecretStore or ClusterSecretStore", ref.Kind)
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s %q not found: create it (devctl's platform-mocks chart creates a ClusterSecretStore named \"vault\")", kindOr(ref.Kind), ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %q: %w", kindOr(ref.Kind), ref.Name, err)
	}
	var st store
	if err := fromUnstructured(u, &st); err != nil {
		return nil, fmt.Errorf("%s %q: %w", kindOr(ref.Kind), ref.Name, err)
	}
	v := st.Spec.Provider.Vault
	if v == nil {
		return nil, fmt.Errorf("%s %q: only provider vault is supported by devctl's External Secrets stand-in", kindOr(ref.Kind), ref.Name)
	}
	if v.Version != "" && v.Version != "v2" {
		return nil, fmt.Errorf("%s %q: vault version %q: only v2 (KV version 2) is supported", kindOr(ref.Kind), ref.Name, v.Version)
	}
	tr := v.Auth.TokenSecretRef
	if v.Server == "" || tr == nil || tr.Name == "" {
		return nil, fmt.Errorf("%s %q: provider.vault needs server and auth.tokenSecretRef", kindOr(ref.Kind), ref.Name)
	}
	tokenNS := ns
	if ref.Kind == "ClusterSecretStore" && tr.Namespace != "" {
		tokenNS = tr.Namespace
	}
	sec, err := c.dyn.Resource(secrets).Namespace(tokenNS).Get(ctx, tr.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the Vault token from Secret %s/%s: %w", tokenNS, tr.Name, err)
	}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sec.Object, &s); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", tokenNS, tr.Name, err)
	}
	k := tr.Key
	if k == "" {
		k = "token"
	}
	token := strings.TrimSpace(string(s.Data[k]))
	if token == "" {
		return nil, fmt.Errorf("secret %s/%s has no key %q holding the Vault token", tokenNS, tr.Name, k)
	}
	path := strings.Trim(v.Path, "/")
	if path == "" {
		path = "secret"
	}
	return &vaultStore{server: strings.TrimSuffix(v.Server, "/"), path: path, token: token}, nil
}

func kindOr(kind string) string {
	if kind == "" {
		return "SecretStore"
	}
	return kind
}

// readVault reads a KV v2 secret as ESO's vault provider does: the key is
// relative to the store's path (a key that already starts with it is
// accepted too).
func (c *Controller) readVault(ctx context.Context, vs *vaultStore, ref remoteRef) (map[string]any, error) {
	k := strings.TrimPrefix(ref.Key, "/")
	k = strings.TrimPrefix(k, vs.path+"/data/")
	k = strings.TrimPrefix(k, vs.path+"/")
	u := vs.server + "/v1/" + vs.path + "/data/" + k
	if ref.Version != "" {
		u += "?version=" + url.QueryEscape(ref.Version)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", vs.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %q from Vault at %s: %w", ref.Key, vs.server, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read %q from Vault: %w", ref.Key, err)
	}
	var out struct {
		Errors []string `json:"errors"`
		Data   struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &out)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusOK && out.Data.Data == nil:
		return nil, fmt.Errorf("vault secret %s/%s: %w (write it with `vault kv put %s/%s ...` or add it to the seed file)",
			vs.path, k, ErrNotFound, vs.path, k)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("vault denied reading %s/%s: %s (check the token the store references)", vs.path, k, strings.Join(out.Errors, "; "))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("vault answered %s for %s/%s: %s", resp.Status, vs.path, k, strings.Join(out.Errors, "; "))
	}
	return out.Data.Data, nil
}

// writeSecret creates or updates the target Secret. A Secret that exists
// and is controlled by something else is left alone, as ESO does, unless
// merge is set (creationPolicy Merge), which only adds the data.
func (c *Controller) writeSecret(ctx context.Context, es *unstructured.Unstructured, want *corev1.Secret, merge bool) error {
	client := c.dyn.Resource(secrets).Namespace(want.Namespace)
	cur, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if merge {
			return fmt.Errorf("secret %s does not exist; creationPolicy Merge only updates an existing Secret", want.Name)
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
		if err != nil {
			return err
		}
		if _, err := client.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Secret %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Secret %s: %w", want.Name, err)
	}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(cur.Object, &s); err != nil {
		return err
	}
	if ctl := metav1.GetControllerOf(&s); !merge && ctl != nil && ctl.UID != es.GetUID() {
		return fmt.Errorf("secret %s is controlled by %s %s: change spec.target.name or delete that Secret", want.Name, ctl.Kind, ctl.Name)
	}
	if merge {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range want.Data {
			s.Data[k] = v
		}
	} else {
		s.Data, s.Type, s.OwnerReferences = want.Data, want.Type, want.OwnerReferences
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		s.Labels[k] = v
	}
	if len(want.Annotations) > 0 && s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	for k, v := range want.Annotations {
		s.Annotations[k] = v
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&s)
	if err != nil {
		return err
	}
	if _, err := client.Update(ctx, &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Secret %s: %w", want.Name, err)
	}
	return nil
}

// applyTemplate renders ESO's target.template (engine v2) over the fetched
// data: template.data values are Go templates reading the fetched keys.
func applyTemplate(t *template, s *corev1.Secret) error {
	if len(t.TemplateFrom) > 0 {
		return errors.New("spec.target.template.templateFrom is not supported by devctl's External Secrets stand-in: use template.data")
	}
	if t.Type != "" {
		s.Type = corev1.SecretType(t.Type)
	}
	for k, v := range t.Metadata.Labels {
		s.Labels[k] = v
	}
	if len(t.Metadata.Annotations) > 0 {
		s.Annotations = t.Metadata.Annotations
	}
	if len(t.Data) == 0 {
		return nil
	}
	values := map[string]string{}
	for k, v := range s.Data {
		values[k] = string(v)
	}
	out := map[string][]byte{}
	if t.MergePolicy == "Merge" {
		out = s.Data
	}
	for k, src := range t.Data {
		tpl, err := texttemplate.New(k).Option("missingkey=error").Parse(src)
		if err != nil {
			return fmt.Errorf("spec.target.template.data.%s: %w", k, err)
		}
		var b bytes.Buffer
		if err := tpl.Execute(&b, values); err != nil {
			return fmt.Errorf("spec.target.template.data.%s: %w", k, err)
		}
		out[k] = b.Bytes()
	}
	s.Data = out
	return nil
}

// property looks up a key, or a dotted path into nested objects.
func property(m map[string]any, p string) (any, bool) {
	if v, ok := m[p]; ok {
		return v, true
	}
	var cur any = m
	for part := range strings.SplitSeq(p, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// encode turns a Vault value into Secret bytes: strings as they are,
// everything else as JSON.
func encode(v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, _ := json.Marshal(v)
	return b
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
