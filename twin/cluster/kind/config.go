package kind

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// LabelVM carries a VM's name on its kind node, whose own name kind chooses.
const LabelVM = "hybridtwin.io/vm"

// DefaultNodeImage is the kind node image the twin asks for: Kubernetes v1.33, the minor version the
// embedded provider runs (tools/toolcache pins v1.33.13). The digest is the one published with kind
// v0.29.0's release notes for kindest/node:v1.33.1; override Options.NodeImage for another.
const DefaultNodeImage = "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"

// Config returns the kind configuration for a spec (after WithDefaults) on the given node image.
func Config(spec cluster.Spec, nodeImage string) (*v1alpha4.Cluster, error) {
	profile, err := cluster.Profile(spec.TimeProfile)
	if err != nil {
		return nil, err
	}
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     spec.Name,
		Networking: v1alpha4.Networking{
			PodSubnet:     spec.Network.PodCIDR,
			ServiceSubnet: spec.Network.ServiceCIDR,
		},
	}
	cp := v1alpha4.Node{Role: v1alpha4.ControlPlaneRole, Image: nodeImage, Labels: map[string]string{cluster.LabelCluster: spec.Name}}
	if len(spec.ControlPlane) > 0 {
		cp.Labels[LabelVM] = spec.ControlPlane[0].Name
		cp.Labels[cluster.LabelHCIHost] = spec.ControlPlane[0].Host
	}
	cfg.Nodes = append(cfg.Nodes, cp)
	for _, n := range spec.Nodes {
		labels := cluster.NodeLabels(spec, n)
		// The kubelet sets kubernetes.io/hostname (the kind node's name; the VM's name goes in LabelVM)
		// and the OS and architecture labels (the Docker host's) itself.
		delete(labels, corev1.LabelHostname)
		delete(labels, corev1.LabelOSStable)
		delete(labels, corev1.LabelArchStable)
		labels[LabelVM] = n.Name
		node := v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: nodeImage, Labels: labels}
		if len(n.Taints) > 0 {
			patch, err := taintPatch(n.Taints)
			if err != nil {
				return nil, err
			}
			node.KubeadmConfigPatches = []string{patch}
		}
		cfg.Nodes = append(cfg.Nodes, node)
	}
	clusterPatch, err := clusterConfigurationPatch(spec, profile)
	if err != nil {
		return nil, err
	}
	kubeletPatch, err := kubeletConfigurationPatch(profile)
	if err != nil {
		return nil, err
	}
	cfg.KubeadmConfigPatches = []string{clusterPatch, kubeletPatch}
	return cfg, nil
}

// NodeNames returns the name of the Kubernetes Node kind makes of each VM in a configuration from Config:
// VM name (the kind node's LabelVM) -> Node name. kind names a node <cluster>-<role>, then
// <cluster>-<role>2, <cluster>-<role>3, ..., counting each role apart in the configuration's node order
// (sigs.k8s.io/kind v0.33.0 pkg/cluster/internal/providers/common/namer.go MakeNodeNamer, called over
// cfg.Nodes in order by providers/docker/provision.go planCreation); the node's container and hostname
// take that name, and kubeadm registers the Node under the hostname. So the control-plane VM becomes
// <cluster>-control-plane and the worker VMs, in spec order, <cluster>-worker, <cluster>-worker2, ...
// The external load balancer kind adds for several control-plane nodes is no Node; Config asks for one.
func NodeNames(cfg *v1alpha4.Cluster) map[string]string {
	seen := map[v1alpha4.NodeRole]int{}
	out := map[string]string{}
	for _, n := range cfg.Nodes {
		seen[n.Role]++
		name := cfg.Name + "-" + string(n.Role)
		if seen[n.Role] > 1 {
			name += strconv.Itoa(seen[n.Role])
		}
		if vm := n.Labels[LabelVM]; vm != "" {
			out[vm] = name
		}
	}
	return out
}

// ConfigYAML renders Config as the YAML `kind create cluster --config` reads.
func ConfigYAML(spec cluster.Spec, nodeImage string) ([]byte, error) {
	cfg, err := Config(spec, nodeImage)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(cfg)
}

// clusterConfigurationPatch is a kubeadm ClusterConfiguration patch with the time profile's flags and
// the spec's ExtraArgs. It has no apiVersion, so kind applies it to whichever kubeadm API version the
// node image uses, converting the extraArgs map to v1beta4's list form itself
// (sigs.k8s.io/kind v0.33.0 pkg/internal/patch/kubeadm_merge.go).
func clusterConfigurationPatch(spec cluster.Spec, p cluster.TimeProfile) (string, error) {
	api := map[string]string{
		"default-not-ready-toleration-seconds":   fmt.Sprint(p.DefaultNotReadyTolerationSeconds),
		"default-unreachable-toleration-seconds": fmt.Sprint(p.DefaultUnreachableTolerationSeconds),
	}
	cm := map[string]string{
		"node-monitor-period":       p.NodeMonitorPeriod.String(),
		"node-monitor-grace-period": p.NodeMonitorGracePeriod.String(),
		"node-startup-grace-period": p.NodeStartupGracePeriod.String(),
		"node-cidr-mask-size":       fmt.Sprint(spec.Network.NodeCIDRMaskSize),
	}
	sched := map[string]string{}
	etcd := map[string]string{}
	for comp, dst := range map[cluster.Component]map[string]string{
		cluster.KubeAPIServer: api, cluster.KubeControllerManager: cm, cluster.KubeScheduler: sched, cluster.Etcd: etcd,
	} {
		for _, a := range spec.ExtraArgs[comp] {
			k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !ok {
				v = "true" // a boolean flag given bare
			}
			dst[k] = v
		}
	}
	doc := map[string]any{
		"kind":              "ClusterConfiguration",
		"apiServer":         map[string]any{"extraArgs": api},
		"controllerManager": map[string]any{"extraArgs": cm},
	}
	if len(sched) > 0 {
		doc["scheduler"] = map[string]any{"extraArgs": sched}
	}
	if len(etcd) > 0 {
		doc["etcd"] = map[string]any{"local": map[string]any{"extraArgs": etcd}}
	}
	b, err := yaml.Marshal(doc)
	return string(b), err
}

// kubeletConfigurationPatch sets the kubelets' lease and status timings from the time profile.
func kubeletConfigurationPatch(p cluster.TimeProfile) (string, error) {
	b, err := yaml.Marshal(map[string]any{
		"kind":                      "KubeletConfiguration",
		"nodeLeaseDurationSeconds":  p.NodeLeaseDurationSeconds,
		"nodeStatusUpdateFrequency": p.NodeStatusUpdateFrequency.String(),
		"nodeStatusReportFrequency": p.NodeStatusReportFrequency.String(),
	})
	return string(b), err
}

// taintPatch registers a worker with its node pool's taints.
func taintPatch(taints []cluster.Taint) (string, error) {
	ts := append([]cluster.Taint(nil), taints...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	var list []map[string]string
	for _, t := range ts {
		m := map[string]string{"key": t.Key, "effect": t.Effect}
		if t.Value != "" {
			m["value"] = t.Value
		}
		list = append(list, m)
	}
	b, err := yaml.Marshal(map[string]any{
		"kind":             "JoinConfiguration",
		"nodeRegistration": map[string]any{"taints": list},
	})
	return string(b), err
}
