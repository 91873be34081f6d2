// Package kind runs twin workload clusters with kind (sigs.k8s.io/kind/pkg/cluster), for machines with a
// Docker engine that allows privileged containers and can pull node images. It cannot run on the
// project's CI machines (../shared/RECIPES.md "Docker, kind, testcontainers"); there the embedded provider
// is used.
//
// Config turns a cluster spec into a kind v1alpha4 configuration, and is what this package's tests
// check:
//
//   - one kind control-plane node (AKS hybrid's control-plane VMs; unlike in the embedded provider it is
//     a Node, tainted NoSchedule by kubeadm), and one kind worker per worker VM, carrying the twin's
//     node labels (cluster.NodeLabels) plus LabelVM with the VM's name;
//   - the pod and service networks of the spec;
//   - the time profile as kubeadm patches (kube-apiserver --default-*-toleration-seconds,
//     kube-controller-manager --node-monitor-period/--node-monitor-grace-period/
//     --node-startup-grace-period) and a KubeletConfiguration patch (nodeLeaseDurationSeconds,
//     nodeStatusUpdateFrequency, nodeStatusReportFrequency), and the spec's ExtraArgs as extraArgs;
//   - node-pool taints as JoinConfiguration patches.
//
// VM names and Node names: kind names its nodes <cluster>-control-plane, <cluster>-worker,
// <cluster>-worker2, ... in the configuration's order, not after the VMs. NodeNames predicts that name for
// each VM from the configuration; Create records it in cluster.Info.NodeNames, after checking it against
// the LabelVM label of every Node kind made (ErrNodeNames, and the cluster deleted, if kind named them
// otherwise). CutOff, Restore and MarkOutOfService take VM names and act on the VM's kind node; callers that
// patch, drain or delete a Node through the API server look its name up with cluster.Info.NodeName.
//
// Tested without Docker: the configuration (golden files, labels, taints, kubeadm patches), NodeNames
// against kind v0.33.0's naming rule, the check against the Nodes' labels, and that CutOff runs
// `docker pause <the VM's kind node>` (with a recording stand-in for docker). Not run here: Create,
// Delete, Restore, MarkOutOfService and ExportLogs against a real engine.
//
// What kind cannot model: a node's capacity is the Docker host's, not the VM size's (the VM size is
// still the node.kubernetes.io/instance-type label), and node IPs come from Docker's network.
//
// Using it, on a machine with Docker:
//
//	p := kind.New(kind.Options{})            // node image: DefaultNodeImage
//	info, err := p.Create(ctx, spec)         // spec.Provider = "kind"
//	// kubectl --kubeconfig info.Kubeconfig get nodes
//	p.CutOff(ctx, spec.Name, "moc-east-w2") // docker pause of that VM's kind node
//	p.Restore(ctx, spec.Name, "moc-east-w2")
//	p.Delete(ctx, spec.Name)
//
// or write the configuration and use the kind CLI: `kind create cluster --config <(Config as YAML)`.
//
// It imports twin/cluster and kind; it must not import the embedded provider.
package kind
