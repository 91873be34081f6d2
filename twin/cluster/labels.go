package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Labels every VM-node carries. The twin's own keys live under hybridtwin.io/ so they can never be
// mistaken for labels a real AKS hybrid node has.
const (
	// LabelHCIHost names the Azure Stack HCI host the node's VM runs on.
	//
	// Why not topology.kubernetes.io/zone: real AKS hybrid nodes do not carry the HCI host as their zone,
	// so a workload with a zone topology-spread constraint spreads differently there than it would in a
	// twin that set it. A twin label keeps scheduling identical to the estate, while scenarios and
	// reports can still select and group nodes by host. A user who does label zones by host can add
	// topology.kubernetes.io/zone in NodeSpec.Labels.
	LabelHCIHost = "hybridtwin.io/hci-host"
	// LabelNodePool names the node pool, in plain form (AKS hybrid's own label below embeds it).
	LabelNodePool = "hybridtwin.io/node-pool"
	// LabelCluster names the workload cluster.
	LabelCluster = "hybridtwin.io/cluster"

	// LabelAKSArcNodePool is the node-pool label AKS enabled by Azure Arc puts on every node, with the
	// value "<cluster>-<random>-<nodepool>". Source: Microsoft Learn, "Deploy an AI model on AKS enabled
	// by Azure Arc with the Kubernetes AI toolchain operator", step "confirm whether the node is
	// successfully provisioned using the node pool name" (kubectl get nodes --show-labels | grep
	// "msft.microsoft/nodepool-name=.*<Node_Pool_Name>"). The twin's <random> is the first 8 hex digits
	// of the cluster name's SHA-256, so the value is the same on every run.
	LabelAKSArcNodePool = "msft.microsoft/nodepool-name"
)

// The well-known Kubernetes labels a kubelet sets, which AKS lists among its reserved system labels
// (Microsoft Learn, "Use labels in an Azure Kubernetes Service (AKS) cluster", Reserved system labels:
// kubernetes.io/arch, kubernetes.io/os, node.kubernetes.io/instance-type <VM size>,
// kubernetes.io/hostname). AKS's kubernetes.azure.com/* labels (agentpool, mode, ...) are documented
// for AKS in Azure, not for AKS hybrid, so the twin does not invent them; add them in NodeSpec.Labels if
// an estate has them.
var wellKnown = []string{
	corev1.LabelHostname,
	corev1.LabelOSStable,
	corev1.LabelArchStable,
	corev1.LabelInstanceTypeStable,
}

// isTwinLabel reports whether the twin sets this label key itself.
func isTwinLabel(k string) bool {
	if strings.HasPrefix(k, "hybridtwin.io/") || k == LabelAKSArcNodePool {
		return true
	}
	for _, w := range wellKnown {
		if k == w {
			return true
		}
	}
	return false
}

// NodeLabels returns the labels of one VM-node of cluster s: the twin's, AKS hybrid's node-pool label,
// the kubelet's well-known labels, then the node's own (which may not override the others).
func NodeLabels(s Spec, n NodeSpec) map[string]string {
	l := map[string]string{
		LabelCluster:         s.Name,
		LabelNodePool:        n.Pool,
		LabelHCIHost:         n.Host,
		LabelAKSArcNodePool:  aksArcPoolLabel(s.Name, n.Pool),
		corev1.LabelHostname: n.Name,
		corev1.LabelOSStable: orDefault(n.OS, "linux"),
		// The twin models x86-64 HCI hosts; AKS hybrid's VM sizes are amd64.
		corev1.LabelArchStable: "amd64",
	}
	if n.Size != "" {
		l[corev1.LabelInstanceTypeStable] = n.Size
	}
	for k, v := range n.Labels {
		if _, set := l[k]; !set && !isTwinLabel(k) {
			l[k] = v
		}
	}
	return l
}

func aksArcPoolLabel(cluster, pool string) string {
	sum := sha256.Sum256([]byte(cluster))
	return cluster + "-" + hex.EncodeToString(sum[:])[:8] + "-" + pool
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
