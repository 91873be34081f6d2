package embedded

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestComponentArgsGolden pins every flag each component gets, per time profile
// (testdata/args.<profile>.golden; -update rewrites them). A change here changes what runs.
func TestComponentArgsGolden(t *testing.T) {
	spec := cluster.Spec{
		Name:  "workload-1",
		Nodes: []cluster.NodeSpec{{Name: "moc-1", Pool: "np1", Host: "hci-1", CPU: 4, MemoryMiB: 8192}},
		ExtraArgs: map[cluster.Component][]string{
			cluster.KubeAPIServer: {"--v=2"},
		},
	}
	l := layout{Dir: "/state/workload-1"}
	pt := ports{EtcdClient: 2379, EtcdPeer: 2380, APIServer: 6443, ControllerManager: 10257, Scheduler: 10259}
	for _, pn := range []cluster.TimeProfileName{cluster.ProfileReal, cluster.ProfileFast} {
		t.Run(string(pn), func(t *testing.T) {
			s := spec
			s.TimeProfile = pn
			s = s.WithDefaults()
			p, err := cluster.Profile(pn)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, c := range cluster.Components() {
				fmt.Fprintf(&b, "%s\n", c)
				for _, a := range componentArgs(c, s, p, l, pt, store{URL: url(pt.EtcdClient)}) {
					fmt.Fprintf(&b, "  %s\n", a)
				}
			}
			path := filepath.Join("testdata", "args."+string(pn)+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Fatalf("%s differs (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestExtraArgsComeLast(t *testing.T) {
	s := cluster.Spec{Name: "w", Nodes: []cluster.NodeSpec{{Name: "n", Pool: "p", Host: "h", CPU: 1, MemoryMiB: 1}},
		ExtraArgs: map[cluster.Component][]string{cluster.KubeControllerManager: {"--node-monitor-grace-period=99s"}}}
	s = s.WithDefaults()
	p, _ := cluster.Profile(cluster.ProfileFast)
	args := componentArgs(cluster.KubeControllerManager, s, p, layout{Dir: "/x"}, ports{}, store{})
	if args[len(args)-1] != "--node-monitor-grace-period=99s" {
		t.Fatalf("last flag = %s; the spec's ExtraArgs must come last so they win", args[len(args)-1])
	}
}

// TestLightTierArgs: a light cluster's API server stores in the shared etcd under its own prefix, with
// the tier's flags before the spec's ExtraArgs (which win).
func TestLightTierArgs(t *testing.T) {
	s := cluster.Spec{Name: "site-7", Tier: cluster.TierLight, Nodes: []cluster.NodeSpec{{Name: "n", Pool: "p", Host: "h", CPU: 1, MemoryMiB: 1}},
		ExtraArgs: map[cluster.Component][]string{cluster.KubeAPIServer: {"--watch-cache-sizes=nodes#100"}}}
	s = s.WithDefaults()
	p, _ := cluster.Profile(cluster.ProfileFast)
	args := componentArgs(cluster.KubeAPIServer, s, p, layout{Dir: "/x"}, ports{APIServer: 6443},
		store{URL: "http://127.0.0.1:2379", Prefix: cluster.EtcdPrefix("site-7")})
	idx := map[string]int{}
	for i, a := range args {
		idx[a] = i
	}
	for _, want := range []string{"--etcd-servers=http://127.0.0.1:2379", "--etcd-prefix=/hybridtwin/site-7", "--default-watch-cache-size=0"} {
		if _, ok := idx[want]; !ok {
			t.Errorf("kube-apiserver args lack %s: %v", want, args)
		}
	}
	if idx["--default-watch-cache-size=0"] > idx["--watch-cache-sizes=nodes#100"] {
		t.Errorf("the tier's flags come after the spec's ExtraArgs: %v", args)
	}
}
