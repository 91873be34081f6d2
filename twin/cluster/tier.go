package cluster

import (
	"fmt"
	"sort"
	"strings"
)

// TiersVersion names this set of tiers; it must change whenever a value in this file changes.
const TiersVersion = "tiers/v1"

// TierName selects how heavy a workload cluster's control plane is: every cluster of a twin picks its
// own (spec.clusters[].tier), so a fleet can run full clusters for the sites under test and lighter ones
// for the rest (issue 21).
type TierName string

const (
	// TierFull is a cluster with its own etcd and the API server's defaults: what an AKS hybrid workload
	// cluster has. The default.
	TierFull TierName = "full"
	// TierLight shares one etcd among the provider's light clusters, each API server under its own
	// --etcd-prefix (the multi-tenant control-plane pattern, RECIPES.md: Kamaji), and turns the API
	// server's watch cache off for the built-in resources its own components do not watch all the time.
	// Measured in bench/results/fleetcost.json; its limits are in Tier.Limits.
	TierLight TierName = "light"
)

// DefaultTier is the tier a spec gets when it names none.
const DefaultTier = TierFull

// Tier is what a tier changes, and what a cluster of it cannot do.
type Tier struct {
	Name TierName `json:"name"`
	// SharedEtcd: the cluster's API server stores under EtcdPrefix(cluster) in one etcd the provider
	// runs for all its clusters of the tier, instead of an etcd of its own.
	SharedEtcd bool `json:"sharedEtcd"`
	// APIServerArgs are added to kube-apiserver's flags, before the spec's ExtraArgs (which override).
	APIServerArgs []string `json:"apiServerArgs,omitempty"`
	// Limits are what a cluster of the tier cannot do that a full one can.
	Limits []string `json:"limits,omitempty"`
}

// lightWatchCacheArgs turn the watch cache off for every built-in resource but nodes and pods, which the
// cluster's scheduler, node lifecycle controller and simulated kubelets watch all the time. In v1.33 watch
// caches size themselves and "the only meaningful size setting to supply here is zero"
// (k8s.io/apiserver v0.33.13 pkg/server/options/etcd.go, --watch-cache-sizes);
// --default-watch-cache-size=0 disables the cache "for resources that do not have a default watch size
// set". Resources defined by CRDs (Flux's) keep their cache.
var lightWatchCacheArgs = []string{"--default-watch-cache-size=0", "--watch-cache-sizes=nodes#100,pods#100"}

var tiers = map[TierName]Tier{
	TierFull: {Name: TierFull},
	TierLight: {
		Name:          TierLight,
		SharedEtcd:    true,
		APIServerArgs: lightWatchCacheArgs,
		Limits: []string{
			"one etcd for every light cluster of the twin: an etcd crash, restart or slowdown (a chaos step, a full disk) takes every light cluster's API server down together, and their writes queue on one etcd",
			"etcd figures (database size, request latency) are the shared store's, not one cluster's",
			"with the watch cache off, lists and watches of resources other than nodes and pods are served by etcd: more etcd load and slower lists for controllers that watch them (the engine's watches of Flux objects are cached)",
			"embedded provider only; the kind provider runs every cluster in full",
		},
	},
}

// LookupTier returns the named tier; "" means DefaultTier.
func LookupTier(name TierName) (Tier, error) {
	if name == "" {
		name = DefaultTier
	}
	t, ok := tiers[name]
	if !ok {
		return Tier{}, fmt.Errorf("%q is not a tier; use one of %s", name, strings.Join(TierNames(), ", "))
	}
	t.APIServerArgs = append([]string(nil), t.APIServerArgs...)
	t.Limits = append([]string(nil), t.Limits...)
	return t, nil
}

// TierNames lists the tiers, sorted.
func TierNames() []string {
	var out []string
	for n := range tiers {
		out = append(out, string(n))
	}
	sort.Strings(out)
	return out
}

// EtcdPrefix is the key prefix a cluster's API server stores under in a shared etcd (--etcd-prefix). It
// ends in the cluster's name, which is unique in a provider, so no cluster's keys are under another's.
func EtcdPrefix(clusterName string) string { return "/hybridtwin/" + clusterName }
