package fleetcost

import (
	"fmt"
	"strings"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Variant is one way of running a workload cluster: the twin's default (full) or one with a flag that
// should make it cheaper, so the figures say what each flag buys.
type Variant struct {
	Name string
	// Note says what the variant changes, for the result's notes.
	Note string
	// Nodes is the number of simulated nodes (worker VMs) per cluster.
	Nodes int
	// Tier is the cluster's tier (cluster.Spec.Tier).
	Tier cluster.TierName
	// ExtraArgs are added to the control plane's flags (cluster.Spec.ExtraArgs).
	ExtraArgs map[cluster.Component][]string
}

// watchCacheDefault puts the API server's default watch-cache size back (100, the flag's default in
// k8s.io/apiserver v0.33.13), so the sharedetcd variant changes only where objects are stored.
var watchCacheDefault = []string{"--default-watch-cache-size=100"}

// defaultNodes is the example twin's shape (examples/twin.yaml: three worker VMs per cluster).
const defaultNodes = 3

// watchCacheArgs are the light tier's watch-cache flags alone (twin/cluster/tier.go says why).
var watchCacheArgs = lightTierArgs()

func lightTierArgs() []string {
	t, err := cluster.LookupTier(cluster.TierLight)
	if err != nil {
		panic(err) // the tier is defined in twin/cluster
	}
	return t.APIServerArgs
}

// runtimeConfigArgs switch off the built-in API groups no twin layout uses: grep of apiVersion in
// examples/, scenarios/ and twin/ finds v1, apps, rbac, autoscaling/v2, networking, admissionregistration,
// apiextensions and Flux's groups; batch and autoscaling/v1 are never used. Groups the control plane
// itself needs stay on (authentication, authorization, coordination for leases, discovery, events,
// flowcontrol, scheduling, storage for the scheduler, certificates for the controller-manager's signers,
// policy for evictions), and so does node.k8s.io: with it off the API server never turns ready (measured
// here: /readyz stays at "informer-sync failed", the RuntimeClass admission plugin's informer).
var runtimeConfigArgs = []string{"--runtime-config=batch/v1=false,autoscaling/v1=false"}

// Variants are the ways measured, by name.
var Variants = []Variant{
	{Name: "full", Note: "the twin's default: own etcd, 3 simulated nodes, default API server flags", Nodes: defaultNodes},
	{Name: "watchcache", Note: "kube-apiserver " + strings.Join(watchCacheArgs, " "), Nodes: defaultNodes,
		ExtraArgs: map[cluster.Component][]string{cluster.KubeAPIServer: watchCacheArgs}},
	{Name: "apigroups", Note: "kube-apiserver " + strings.Join(runtimeConfigArgs, " "), Nodes: defaultNodes,
		ExtraArgs: map[cluster.Component][]string{cluster.KubeAPIServer: runtimeConfigArgs}},
	{Name: "nodes1", Note: "1 simulated node per cluster instead of 3", Nodes: 1},
	{Name: "sharedetcd", Note: "one etcd for all the clusters, each API server under its own --etcd-prefix (tier light's store, default watch cache)",
		Nodes: defaultNodes, Tier: cluster.TierLight, ExtraArgs: map[cluster.Component][]string{cluster.KubeAPIServer: watchCacheDefault}},
	{Name: "light", Note: "tier light (twin/cluster/tier.go): shared etcd with --etcd-prefix and the smaller watch cache", Nodes: defaultNodes, Tier: cluster.TierLight},
}

// variantsByName returns the named variants, in the order given.
func variantsByName(names []string) ([]Variant, error) {
	var out []Variant
	for _, n := range names {
		found := false
		for _, v := range Variants {
			if v.Name == n {
				out = append(out, v)
				found = true
			}
		}
		if !found {
			var have []string
			for _, v := range Variants {
				have = append(have, v.Name)
			}
			return nil, fmt.Errorf("%s: no variant %q; use some of %s", envVariants, n, strings.Join(have, ","))
		}
	}
	return out, nil
}

// spec is one benchmark cluster of a variant: the example's VMs (1 control plane, 1 load balancer) and
// v.Nodes workers, with the fast time profile as examples/twin.yaml runs it.
func (v Variant) spec(name string) cluster.Spec {
	vm := func(n, host string) cluster.VMSpec {
		return cluster.VMSpec{Name: n, Host: host, Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192}
	}
	s := cluster.Spec{
		Name:          name,
		TimeProfile:   cluster.ProfileFast,
		Tier:          v.Tier,
		ControlPlane:  []cluster.VMSpec{vm(name+"-cp1", "hci-1")},
		LoadBalancers: []cluster.VMSpec{vm(name+"-lb1", "hci-2")},
		ExtraArgs:     v.ExtraArgs,
	}
	for i := 1; i <= v.Nodes; i++ {
		s.Nodes = append(s.Nodes, cluster.NodeSpec{
			Name: fmt.Sprintf("%s-w%d", name, i), Pool: "linuxpool", Host: fmt.Sprintf("hci-%d", i),
			Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192,
		})
	}
	return s
}
