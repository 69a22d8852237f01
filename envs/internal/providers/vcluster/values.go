package vcluster

import (
	"os"
	"strings"
)

// Images are the images the vcluster chart runs.
type Images struct {
	// Syncer is the vcluster control-plane image (the syncer with kine).
	Syncer string
	// Kubernetes is the image whose /kubernetes folder holds
	// kube-apiserver, kube-controller-manager and kube-scheduler.
	Kubernetes string
	// CoreDNS is the virtual cluster's DNS image; empty is vcluster's
	// default. Create uses the image the host's own CoreDNS runs, which a
	// kind node has preloaded.
	CoreDNS string
}

// The images e2e/images/vcluster.sh builds offline, by their stable names.
const (
	DefaultSyncerImage     = "devctl.local/vcluster:0.30.0"
	DefaultKubernetesImage = "devctl.local/vcluster-kubernetes:v1.35.4"
)

// Environment variables that override the default images.
const (
	EnvSyncerImage     = "DEVCTL_VCLUSTER_IMAGE"
	EnvKubernetesImage = "DEVCTL_VCLUSTER_KUBERNETES_IMAGE"
)

// BuildImagesCommand is the command that builds the default images.
const BuildImagesCommand = "e2e/images/vcluster.sh (or `make e2e-images`) in a devctl checkout"

// DefaultImages are the images $DEVCTL_VCLUSTER_IMAGE and
// $DEVCTL_VCLUSTER_KUBERNETES_IMAGE name, or the offline-built defaults.
func DefaultImages() Images {
	im := Images{Syncer: DefaultSyncerImage, Kubernetes: DefaultKubernetesImage}
	if v := os.Getenv(EnvSyncerImage); v != "" {
		im.Syncer = v
	}
	if v := os.Getenv(EnvKubernetesImage); v != "" {
		im.Kubernetes = v
	}
	return im
}

// ControlPlaneInstance is the app.kubernetes.io/instance label of the
// vcluster pod: the port-forward finds the pod by it.
const ControlPlaneInstance = "devctl-vcluster"

// APIPort is the port of the virtual API server in the vcluster pod.
const APIPort = 8443

// corefile is vcluster's default Corefile without the hosts and rewrite
// plugins: the virtual cluster's DNS resolves Services and forwards the rest,
// and runs on a CoreDNS built with only the plugins kubeadm's Corefile uses.
const corefile = `.:1053 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`

// probes are the vcluster pod's startup and readiness probes, checked every
// second instead of the chart's 6 and 2 seconds: the pod turns Ready, and
// the environment's API is reachable, within a second of the virtual API
// server answering /readyz, instead of up to 8 seconds later. The failure
// thresholds keep the chart's overall budgets (30 minutes to start, 2
// minutes of not answering before the pod is taken out of its Service).
var probes = map[string]any{
	"startupProbe":   map[string]any{"periodSeconds": 1, "failureThreshold": 1800},
	"readinessProbe": map[string]any{"periodSeconds": 1, "failureThreshold": 120},
}

// Values are the chart values Create installs with: telemetry off, the
// given images, nothing that needs the internet (no hostname-proxied
// kubelets, no alpine init container rewriting /etc/hosts), probes that
// notice a started control plane within a second, and a ResourceQuota and
// LimitRange in the host namespace.
func Values(im Images) map[string]any {
	syncerRepo, syncerTag := splitImage(im.Syncer)
	k8sRepo, k8sTag := splitImage(im.Kubernetes)
	coredns := map[string]any{"overwriteConfig": corefile}
	if im.CoreDNS != "" {
		coredns["deployment"] = map[string]any{"image": im.CoreDNS}
	}
	return map[string]any{
		"telemetry": map[string]any{"enabled": false},
		"controlPlane": map[string]any{
			"distro": map[string]any{
				"k8s": map[string]any{
					"enabled": true,
					"image":   map[string]any{"registry": "", "repository": k8sRepo, "tag": k8sTag},
				},
			},
			"statefulSet": map[string]any{
				"image":  map[string]any{"registry": "", "repository": syncerRepo, "tag": syncerTag},
				"probes": probes,
				"pods": map[string]any{
					"labels": map[string]any{"app.kubernetes.io/instance": ControlPlaneInstance},
				},
			},
			"coredns": coredns,
		},
		"networking": map[string]any{
			"advanced": map[string]any{
				"proxyKubelets": map[string]any{"byHostname": false},
			},
		},
		"sync": map[string]any{
			"toHost": map[string]any{
				"pods": map[string]any{
					"rewriteHosts": map[string]any{"enabled": false},
				},
			},
		},
		"policies": map[string]any{
			"resourceQuota": map[string]any{"enabled": true},
			"limitRange":    map[string]any{"enabled": true},
		},
	}
}

// splitImage splits "repo:tag" (a registry port is not a tag); a missing tag
// is "latest".
func splitImage(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}
