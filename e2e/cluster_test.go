//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/devctl/devctl/e2e/harness"
)

// TestClusterFromNodeImage drives the kind library the way devctl does: it
// creates a cluster from the offline node image, waits for the node and
// CoreDNS, loads a locally built FROM scratch image into the node, serves it
// behind a Service (with a PersistentVolumeClaim on the default StorageClass)
// and reaches it by DNS name from a Job, then deletes the cluster and checks
// that no container is left. On failure the cluster's logs are exported to
// e2e/artifacts/TestClusterFromNodeImage.
func TestClusterFromNodeImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	nodeImage, err := harness.NodeImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	probeImage, err := harness.ProbeImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	harness.UseDockerWrapper(t)

	provider := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	name := fmt.Sprintf("devctl-e2e-%d", time.Now().UnixNano()%1_000_000)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	t.Cleanup(func() {
		start := time.Now()
		if err := harness.DeleteCluster(context.Background(), t, provider, name, kubeconfig); err != nil {
			t.Errorf("delete cluster %q: %v", name, err)
		}
		harness.AssertNoClusterContainers(context.Background(), t, name)
		t.Logf("timing: delete %v", time.Since(start).Round(time.Millisecond))
	})
	harness.ExportLogsOnFailure(t, provider, name) // runs before the delete above

	start := time.Now()
	if err := provider.Create(name,
		cluster.CreateWithNodeImage(nodeImage),
		cluster.CreateWithRetain(true), // keep failed nodes for the log export; the cleanup deletes them
		cluster.CreateWithKubeconfigPath(kubeconfig),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	); err != nil {
		t.Fatalf("create cluster %q from %s: %v", name, nodeImage, err)
	}
	created := time.Since(start)

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubernetes client: %v", err)
	}
	if err := waitNodesReady(ctx, cs); err != nil {
		t.Fatal(err)
	}
	nodeReady := time.Since(start)
	if err := waitDeploymentAvailable(ctx, cs, "kube-system", "coredns"); err != nil {
		t.Fatal(err)
	}
	dnsReady := time.Since(start)
	t.Logf("timing: kind create returned %v, node Ready %v, CoreDNS Ready %v (all from the start of create)",
		created.Round(time.Millisecond), nodeReady.Round(time.Millisecond), dnsReady.Round(time.Millisecond))

	loadStart := time.Now()
	loadImage(ctx, t, provider, name, probeImage)
	t.Logf("timing: load %s %v", probeImage, time.Since(loadStart).Round(time.Millisecond))

	ns := "e2e-probe"
	token := fmt.Sprintf("probe-says-%d", time.Now().UnixNano())
	serveStart := time.Now()
	deployProbe(ctx, t, cs, ns, probeImage, token)
	if err := waitDeploymentAvailable(ctx, cs, ns, "probe"); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: probe Deployment (with a PersistentVolumeClaim) available %v", time.Since(serveStart).Round(time.Millisecond))
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "probe-data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get PersistentVolumeClaim: %v", err)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("PersistentVolumeClaim %s/probe-data is %s, want Bound (default StorageClass of the node image)", ns, pvc.Status.Phase)
	}

	url := fmt.Sprintf("http://probe.%s.svc.cluster.local/", ns)
	jobStart := time.Now()
	logs := runClientJob(ctx, t, cs, ns, probeImage, url, token)
	t.Logf("timing: client Job done %v", time.Since(jobStart).Round(time.Millisecond))
	if !strings.Contains(logs, token) {
		t.Fatalf("client Job GET %s printed %q, want the body %q served by the Deployment", url, logs, token)
	}
}

// loadImage saves image from the local Docker engine and loads it into every
// node, as `kind load docker-image` does.
func loadImage(ctx context.Context, t *testing.T, provider *cluster.Provider, clusterName, image string) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", archive, image).CombinedOutput(); err != nil {
		t.Fatalf("docker save %s: %v: %s", image, err, out)
	}
	nodes, err := provider.ListInternalNodes(clusterName)
	if err != nil {
		t.Fatalf("list nodes of %q: %v", clusterName, err)
	}
	for _, n := range nodes {
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		err = nodeutils.LoadImageArchive(n, f)
		_ = f.Close()
		if err != nil {
			t.Fatalf("load %s into node %s: %v", image, n.String(), err)
		}
	}
}

func deployProbe(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, image, body string) {
	t.Helper()
	labels := map[string]string{"app": "probe"}
	objs := []func() error{
		func() error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "probe-data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("16Mi"),
					}},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							Containers: []corev1.Container{{
								Name:            "probe",
								Image:           image,
								ImagePullPolicy: corev1.PullNever, // loaded, never pulled
								Args:            []string{"serve", "-addr", ":8080", "-body", body},
								Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
								ReadinessProbe: &corev1.Probe{
									ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
									PeriodSeconds: 1,
								},
								VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
							}},
							// a claim on the image's default StorageClass: the pod only
							// starts once local-path-provisioner has bound it
							Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
								PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "probe-data"},
							}}},
						},
					},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "probe"},
				Spec: corev1.ServiceSpec{
					Selector: labels,
					Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
				},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range objs {
		if err := create(); err != nil {
			t.Fatalf("deploy probe: %v", err)
		}
	}
}

// runClientJob runs the probe image in client mode and returns its output.
func runClientJob(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, image, url, expect string) string {
	t.Helper()
	var backoff int32
	job, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "probe-client"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:            "client",
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"get", "-timeout", "2m", "-expect", expect, url},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create client Job: %v", err)
	}
	var done *batchv1.JobCondition
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil // transient API errors: keep polling
		}
		for i, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				done = &j.Status.Conditions[i]
				return true, nil
			}
		}
		return false, nil
	})
	logs := jobLogs(ctx, t, cs, ns, job.Name)
	if err != nil {
		t.Fatalf("client Job %s/%s did not finish: %v; output: %s", ns, job.Name, err, logs)
	}
	if done.Type != batchv1.JobComplete {
		t.Fatalf("client Job %s/%s failed (%s: %s); output: %s", ns, job.Name, done.Reason, done.Message, logs)
	}
	return logs
}

func jobLogs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, job string) string {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job})
	if err != nil {
		return fmt.Sprintf("(list pods of Job %s: %v)", job, err)
	}
	var out bytes.Buffer
	for _, p := range pods.Items {
		b, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&out, "(logs of pod %s: %v)", p.Name, err)
			continue
		}
		out.Write(b)
	}
	return out.String()
}

func waitNodesReady(ctx context.Context, cs kubernetes.Interface) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if len(nodes.Items) == 0 {
			last = "no nodes registered"
			return false, nil
		}
		for _, n := range nodes.Items {
			if !nodeReady(n) {
				last = "node " + n.Name + " not Ready"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for nodes Ready: %w (last: %s)", err, last)
	}
	return nil
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitDeploymentAvailable(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		last = fmt.Sprintf("%d/%d replicas ready", d.Status.ReadyReplicas, want)
		return d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas >= want && want > 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for Deployment %s/%s: %w (last: %s)", ns, name, err, last)
	}
	return nil
}
