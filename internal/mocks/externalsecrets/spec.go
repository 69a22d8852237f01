package externalsecrets

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// externalSecret holds the fields of an ExternalSecret the controller uses.
type externalSecret struct {
	Spec struct {
		SecretStoreRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"secretStoreRef"`
		Target struct {
			Name           string    `json:"name"`
			CreationPolicy string    `json:"creationPolicy"`
			Template       *template `json:"template"`
		} `json:"target"`
		RefreshInterval *string `json:"refreshInterval"`
		Data            []struct {
			SecretKey string    `json:"secretKey"`
			RemoteRef remoteRef `json:"remoteRef"`
		} `json:"data"`
		DataFrom []struct {
			Extract *remoteRef `json:"extract"`
			Find    any        `json:"find"`
		} `json:"dataFrom"`
	} `json:"spec"`
}

// template is the subset of ESO's target template (engine v2) the stand-in
// renders: Go templates over the fetched values, without ESO's extra
// functions.
type template struct {
	Type        string `json:"type"`
	MergePolicy string `json:"mergePolicy"`
	Metadata    struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data         map[string]string `json:"data"`
	TemplateFrom []any             `json:"templateFrom"`
}

type remoteRef struct {
	Key      string `json:"key"`
	Property string `json:"property"`
	Version  string `json:"version"`
}

// store holds the fields of a SecretStore or ClusterSecretStore.
type store struct {
	Spec struct {
		Provider struct {
			Vault *struct {
				Server  string `json:"server"`
				Path    string `json:"path"`
				Version string `json:"version"`
				Auth    struct {
					TokenSecretRef *struct {
						Name      string `json:"name"`
						Key       string `json:"key"`
						Namespace string `json:"namespace"`
					} `json:"tokenSecretRef"`
				} `json:"auth"`
			} `json:"vault"`
		} `json:"provider"`
	} `json:"spec"`
}

// defaultRefresh is ESO's default refreshInterval.
const defaultRefresh = time.Hour

// refresh parses spec.refreshInterval; 0 means sync once.
func (es *externalSecret) refresh() (time.Duration, error) {
	if es.Spec.RefreshInterval == nil {
		return defaultRefresh, nil
	}
	s := *es.Spec.RefreshInterval
	if s == "0" || s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("spec.refreshInterval %q: want a duration such as 1m or 1h", s)
	}
	return d, nil
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}
