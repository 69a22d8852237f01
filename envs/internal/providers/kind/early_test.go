package kind

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestAPIPort(t *testing.T) {
	for in, want := range map[string]string{
		`{"6443/tcp":[{"HostIp":"127.0.0.1","HostPort":"39123"}]}`:                               "39123",
		`{"80/tcp":[{"HostIp":"","HostPort":"8080"}],"6443/tcp":[{"HostIp":"","HostPort":"0"}]}`: "",
		`{"6443/tcp":[{"HostIp":"","HostPort":""},{"HostIp":"::1","HostPort":"40001"}]}`:         "40001",
		`null`:     "",
		`not json`: "",
	} {
		if got := apiPort([]byte(in)); got != want {
			t.Errorf("apiPort(%s) = %q, want %q", in, got, want)
		}
	}
}

// What kubeadm writes as admin.conf becomes what kind exports: the server
// on this machine's published port, every name kind-NAME, the
// credentials kept.
func TestKindKubeconfig(t *testing.T) {
	admin := []byte(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://dev-control-plane:6443
  name: dev
contexts:
- context:
    cluster: dev
    user: kubernetes-admin
  name: kubernetes-admin@dev
current-context: kubernetes-admin@dev
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`)
	b, err := kindKubeconfig(admin, "dev", "https://127.0.0.1:39123")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "kind-dev" || len(cfg.Contexts) != 1 || len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 {
		t.Fatalf("names: current %q, %d contexts, %d clusters, %d users", cfg.CurrentContext, len(cfg.Contexts), len(cfg.Clusters), len(cfg.AuthInfos))
	}
	ctx := cfg.Contexts["kind-dev"]
	if ctx == nil || ctx.Cluster != "kind-dev" || ctx.AuthInfo != "kind-dev" {
		t.Fatalf("context %+v", ctx)
	}
	c, u := cfg.Clusters["kind-dev"], cfg.AuthInfos["kind-dev"]
	if c.Server != "https://127.0.0.1:39123" || string(c.CertificateAuthorityData) != "CA" {
		t.Errorf("cluster %+v", c)
	}
	if string(u.ClientCertificateData) != "CERT" || string(u.ClientKeyData) != "KEY" {
		t.Errorf("user %+v", u)
	}
	if _, err := kindKubeconfig([]byte("current-context: nowhere\n"), "dev", "https://x"); err == nil {
		t.Error("an admin.conf without its context was accepted")
	}
}
