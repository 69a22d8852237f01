package registry

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"sigs.k8s.io/yaml"
)

func TestContainerdConfigPatch(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Plugins map[string]struct {
			Registry struct {
				ConfigPath string `toml:"config_path"`
			} `toml:"registry"`
		} `toml:"plugins"`
	}
	md, err := toml.Decode(ContainerdConfigPatch, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Undecoded()) != 0 {
		t.Errorf("unexpected keys %v", md.Undecoded())
	}
	if got := cfg.Plugins["io.containerd.grpc.v1.cri"].Registry.ConfigPath; got != "/etc/containerd/certs.d" {
		t.Errorf("config_path = %q, want /etc/containerd/certs.d", got)
	}
}

func TestHostsTOML(t *testing.T) {
	t.Parallel()
	var hosts struct {
		Server string `toml:"server"`
		Host   map[string]struct {
			Capabilities []string `toml:"capabilities"`
		} `toml:"host"`
	}
	if _, err := toml.Decode(HostsTOML(netip.MustParseAddrPort("172.18.0.1:5001")), &hosts); err != nil {
		t.Fatal(err)
	}
	if hosts.Server != "http://172.18.0.1:5001" {
		t.Errorf("server = %q", hosts.Server)
	}
	h, ok := hosts.Host["http://172.18.0.1:5001"]
	if len(hosts.Host) != 1 || !ok || !reflect.DeepEqual(h.Capabilities, []string{"pull", "resolve"}) {
		t.Errorf("host = %+v, want one pull/resolve host at http://172.18.0.1:5001", hosts.Host)
	}
}

func TestNodeHostsAndHosting(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, t.TempDir())
	gw := netip.MustParseAddrPort("172.18.0.1:5002")
	hosts := r.NodeHosts(gw)
	if len(hosts) != 2 || hosts["devctl.local"] != HostsTOML(gw) || hosts[r.Host()] != HostsTOML(gw) {
		t.Errorf("NodeHosts = %v, want devctl.local and %s mapped to %s", hosts, r.Host(), gw)
	}

	dir := t.TempDir()
	if err := WriteHostsDir(dir, hosts); err != nil {
		t.Fatal(err)
	}
	for n := range hosts {
		b, err := os.ReadFile(filepath.Join(dir, n, "hosts.toml"))
		if err != nil || string(b) != hosts[n] {
			t.Errorf("%s/hosts.toml = %q, %v", n, b, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "devctl.local"))
	if len(entries) != 1 {
		t.Errorf("devctl.local/ holds %d files, want only hosts.toml", len(entries))
	}
	if err := WriteHostsDir(dir, map[string]string{"../etc": "x"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("WriteHostsDir(../etc) = %v, want ErrInvalidName", err)
	}

	h := r.Hosting(gw)
	h.Help = "https://example.com/registry"
	cm, err := h.ConfigMap()
	if err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != "kube-public" || cm.Name != "local-registry-hosting" || cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		t.Errorf("ConfigMap is %s %s/%s, want v1 ConfigMap kube-public/local-registry-hosting", cm.GroupVersionKind(), cm.Namespace, cm.Name)
	}
	if len(cm.Data) != 1 {
		t.Errorf("data keys = %v, want only localRegistryHosting.v1", cm.Data)
	}
	// KEP-1755's field names, as tools read them.
	var got map[string]string
	if err := yaml.Unmarshal([]byte(cm.Data["localRegistryHosting.v1"]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"host":                     r.Host(),
		"hostFromContainerRuntime": "devctl.local",
		"hostFromClusterNetwork":   "172.18.0.1:5002",
		"help":                     "https://example.com/registry",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("localRegistryHosting.v1 = %v, want %v", got, want)
	}
	if !strings.HasPrefix(r.Host(), "localhost:") {
		t.Errorf("Host = %q", r.Host())
	}
}

type fakeInspector struct {
	res client.NetworkInspectResult
	err error
}

func (f fakeInspector) NetworkInspect(_ context.Context, _ string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	return f.res, f.err
}

func TestNetworkGateway(t *testing.T) {
	t.Parallel()
	withConfigs := func(cs ...network.IPAMConfig) fakeInspector {
		var f fakeInspector
		f.res.Network.IPAM.Config = cs
		return f
	}
	v6 := network.IPAMConfig{Subnet: netip.MustParsePrefix("fc00:f853:ccd:e793::/64"), Gateway: netip.MustParseAddr("fc00:f853:ccd:e793::1")}
	v4 := network.IPAMConfig{Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1")}
	tests := []struct {
		name    string
		api     fakeInspector
		want    string
		wantErr error
	}{
		{name: "dual stack, IPv6 first", api: withConfigs(v6, v4), want: "172.18.0.1"},
		{name: "IPv6 only", api: withConfigs(v6), wantErr: ErrNoGateway},
		{name: "no network", api: fakeInspector{err: cerrdefs.ErrNotFound}, wantErr: cerrdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NetworkGateway(t.Context(), tt.api, KindNetwork)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NetworkGateway = %v, %v, want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("NetworkGateway = %v, %v, want %s", got, err, tt.want)
			}
		})
	}
}
