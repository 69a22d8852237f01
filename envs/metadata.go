package envs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devctl/devctl/internal/api"
)

// The environment's metadata lives in the cluster itself, so a restarted
// daemon (or another machine sharing the Docker engine) rediscovers it.
const (
	// MetadataNamespace and MetadataName locate the metadata ConfigMap.
	MetadataNamespace = "kube-public"
	MetadataName      = "devctl-env"
	// LabelManaged marks objects devctl owns; its value is "true".
	LabelManaged = "devctl.dev/managed"
	// LabelEnv carries the environment name.
	LabelEnv = "devctl.dev/env"
)

// ConfigMap data keys.
const (
	keyName    = "name"
	keyCreated = "created"
	keySpec    = "spec"
)

// The data keys of metadata written before the spec was recorded as one
// JSON document; decodeMetadata still reads them.
const (
	legacyKeyProvider  = "provider"
	legacyKeyProject   = "project"
	legacyKeyRepo      = "repo"
	legacyKeyBranch    = "branch"
	legacyKeyNodeImage = "nodeImage"
	legacyKeyLabels    = "labels"
)

// errNoMetadata says the cluster carries no devctl metadata: devctl did not
// create it (or did not finish creating it: the metadata is written last).
var errNoMetadata = errors.New("no devctl metadata in the cluster")

// encodeMetadata turns env (without its kubeconfig path) into the metadata
// ConfigMap: the name, the creation time and the spec as JSON, so a
// restarted daemon knows everything the environment was made from.
func encodeMetadata(env Env) (*corev1.ConfigMap, error) {
	spec, err := json.Marshal(env.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec of %q: %w", env.Name, err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      MetadataName,
			Namespace: MetadataNamespace,
			Labels:    map[string]string{LabelManaged: "true", LabelEnv: env.Name},
		},
		Data: map[string]string{
			keyName:    env.Name,
			keyCreated: env.Created.UTC().Format(time.RFC3339),
			keySpec:    string(spec),
		},
	}, nil
}

// decodeMetadata is the inverse of encodeMetadata. A ConfigMap without the
// managed label is reported as errNoMetadata.
func decodeMetadata(cm *corev1.ConfigMap) (Env, error) {
	if cm.Labels[LabelManaged] != "true" {
		return Env{}, fmt.Errorf("configmap %s/%s lacks label %s=true: %w", cm.Namespace, cm.Name, LabelManaged, errNoMetadata)
	}
	d := cm.Data
	env := Env{Name: d[keyName]}
	if s := d[keyCreated]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Env{}, fmt.Errorf("decode %s/%s: created: %w", cm.Namespace, cm.Name, err)
		}
		env.Created = t
	}
	s, ok := d[keySpec]
	if !ok {
		return decodeLegacySpec(cm, env)
	}
	if err := json.Unmarshal([]byte(s), &env.Spec); err != nil {
		return Env{}, fmt.Errorf("decode %s/%s: spec: %w", cm.Namespace, cm.Name, err)
	}
	return env, nil
}

// decodeLegacySpec fills env.Spec from metadata written by an earlier
// devctl, which kept each field under its own key, so environments made
// before an upgrade keep their project, repository and branch.
func decodeLegacySpec(cm *corev1.ConfigMap, env Env) (Env, error) {
	d := cm.Data
	env.Spec = api.EnvSpec{
		Provider:  d[legacyKeyProvider],
		Project:   d[legacyKeyProject],
		Repo:      d[legacyKeyRepo],
		Branch:    d[legacyKeyBranch],
		NodeImage: d[legacyKeyNodeImage],
	}
	if s := d[legacyKeyLabels]; s != "" {
		if err := json.Unmarshal([]byte(s), &env.Spec.Labels); err != nil {
			return Env{}, fmt.Errorf("decode %s/%s: labels: %w", cm.Namespace, cm.Name, err)
		}
	}
	return env, nil
}

// metadataStore reads and writes an environment's metadata through the
// environment's kubeconfig.
type metadataStore interface {
	read(ctx context.Context, kubeconfig []byte) (Env, error)
	write(ctx context.Context, kubeconfig []byte, env Env) error
}

// kubeStore is the metadataStore that talks to the environment's API server.
type kubeStore struct {
	// timeout bounds each request.
	timeout time.Duration
}

func (s kubeStore) configMaps(kubeconfig []byte) (corev1client.ConfigMapInterface, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	cfg.Timeout = s.timeout
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	return c.ConfigMaps(MetadataNamespace), nil
}

func (s kubeStore) read(ctx context.Context, kubeconfig []byte) (Env, error) {
	cms, err := s.configMaps(kubeconfig)
	if err != nil {
		return Env{}, err
	}
	cm, err := cms.Get(ctx, MetadataName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Env{}, fmt.Errorf("configmap %s/%s: %w", MetadataNamespace, MetadataName, errNoMetadata)
	}
	if err != nil {
		return Env{}, fmt.Errorf("read configmap %s/%s: %w", MetadataNamespace, MetadataName, err)
	}
	return decodeMetadata(cm)
}

// write creates or replaces the ConfigMap, retrying for a short while: a
// freshly created control plane may still refuse requests.
func (s kubeStore) write(ctx context.Context, kubeconfig []byte, env Env) error {
	cms, err := s.configMaps(kubeconfig)
	if err != nil {
		return err
	}
	want, err := encodeMetadata(env)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = cms.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(last) {
			var cur *corev1.ConfigMap
			if cur, last = cms.Get(ctx, MetadataName, metav1.GetOptions{}); last == nil {
				want.ResourceVersion = cur.ResourceVersion
				_, last = cms.Update(ctx, want, metav1.UpdateOptions{})
			}
		}
		return last == nil, nil
	})
	if err != nil {
		if last != nil {
			err = last
		}
		return fmt.Errorf("write configmap %s/%s: %w", MetadataNamespace, MetadataName, err)
	}
	return nil
}
