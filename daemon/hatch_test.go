package daemon

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/devctl/devctl/internal/api"
)

// hatchProject is a project whose service "web" deploys its own manifests:
// a Deployment named web-api (with a writable root filesystem, waived
// until expires) running the image the service declares.
func hatchProject(t *testing.T, expires time.Time) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "devctl.yaml"), `apiVersion: devctl.dev/v1alpha1
kind: Project
name: hello
team: dx
owner: dx-example.com
costCenter: cc-1
policy:
  failOn: medium
  waivers: waivers.yaml
services:
  - name: web
    context: web
    port: 8080
    manifests: [deploy]
    image: ghcr.io/acme/web
`)
	writeFile(t, filepath.Join(dir, "web", "Dockerfile"), "FROM scratch\n")
	writeFile(t, filepath.Join(dir, "waivers.yaml"), fmt.Sprintf(`waivers:
- rule: read-only-root-filesystem
  target: {kind: Deployment, name: web-api}
  reason: r
  approver: a@example.com
  expires: %s
`, expires.UTC().Format(time.RFC3339)))
	writeFile(t, filepath.Join(dir, "deploy", "web.yaml"), `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-api
  labels: {app.kubernetes.io/name: web-api, devctl.dev/team: dx, devctl.dev/owner: dx, devctl.dev/cost-center: cc-1}
spec:
  selector: {matchLabels: {app: web-api}}
  template:
    metadata: {labels: {app: web-api}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        image: ghcr.io/acme/web:1.0
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}}
        livenessProbe: {httpGet: {path: /, port: 8080}}
        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 32Mi}}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: false, capabilities: {drop: [ALL]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-api}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`)
	return dir
}

// excluded lists the Deployments the read-only-root-filesystem binding
// lets through.
func excluded(objs []runtime.Object) []string {
	var out []string
	for _, o := range objs {
		if b, ok := o.(*admissionv1.ValidatingAdmissionPolicyBinding); ok && strings.Contains(b.Name, "read-only-root-filesystem") {
			for _, r := range b.Spec.MatchResources.ExcludeResourceRules {
				out = append(out, r.ResourceNames...)
			}
		}
	}
	return out
}

// An escape hatch is deployed as its release, readiness waits on the
// Deployment that runs the image (not one named like the service), and
// the cluster's admission gets the waiver in force; once it has expired
// the up fails at the policy step, before deploying, and admission no
// longer lets the object through.
func TestDaemonEscapeHatch(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := hatchProject(t, time.Now().Add(time.Hour))
	e := upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s (%s)", e.Status.Phase, e.Status.Message, stepList(e.Status.Run))
	}
	f.mu.Lock()
	waited, deploys, adm := slices.Clone(f.waited), f.deploys, f.admission[len(f.admission)-1]
	awaited := slices.Clone(f.awaited)
	f.mu.Unlock()
	// The deploy waits until the API server admits the waived object (it
	// enforces a changed binding moments after the write).
	if !slices.Equal(awaited, []string{"Deployment/web-api", "deploy"}) {
		t.Errorf("admission awaited, then deploy: %v, want [Deployment/web-api deploy]", awaited)
	}
	if !slices.Equal(waited, []string{"web-api"}) {
		t.Errorf("waited on %v, want the Deployment web-api", waited)
	}
	if deploys != 1 {
		t.Errorf("%d deploys, want 1", deploys)
	}
	if got := excluded(adm); !slices.Equal(got, []string{"web-api"}) {
		t.Errorf("admission lets %v through, want [web-api]", got)
	}

	// The waiver expires: the next up fails before deploying, and the
	// admission policies it installed exclude nothing.
	hatchWaiverExpired(t, dir)
	e = upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseFailed || !strings.Contains(e.Status.Message, "waiver expired") {
		t.Fatalf("phase %s message %q, want a policy failure naming the expired waiver", e.Status.Phase, e.Status.Message)
	}
	f.mu.Lock()
	deploys, adm = f.deploys, f.admission[len(f.admission)-1]
	f.mu.Unlock()
	if deploys != 1 {
		t.Errorf("%d deploys after the failed check, want 1", deploys)
	}
	if got := excluded(adm); len(got) != 0 {
		t.Errorf("admission still lets %v through after the waiver expired", got)
	}
}

func hatchWaiverExpired(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "waivers.yaml"), `waivers:
- rule: read-only-root-filesystem
  target: {kind: Deployment, name: web-api}
  reason: r
  approver: a@example.com
  expires: 2020-01-01
`)
}
