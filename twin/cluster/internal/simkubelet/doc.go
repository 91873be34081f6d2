// Package simkubelet is the twin's simulated kubelet: one per VM-node, in the twin's process, speaking
// to the API server with the node's own identity (system:node:<name>, so the real Node authorizer and
// NodeRestriction admission apply). It does the three things a kubelet does that the control plane
// observes:
//
//   - renews the node's Lease in kube-node-lease every quarter of the lease duration;
//   - posts node status (Ready and the pressure conditions, capacity, allocatable, addresses) when it
//     changes and at the report frequency;
//   - runs the pods bound to the node: Pending pods become Running and Ready with a pod IP from the
//     node's pod CIDR (allocated by the real node-ipam controller); Job pods complete; pods being
//     deleted are confirmed deleted, as a kubelet does once their containers have stopped.
//
// Stop makes it fall silent at once, as when its VM or host dies: no lease renewal, no status, no pod
// handling, so the real node-lifecycle controller marks the node Unknown, taints it and evicts its
// pods, which then stay Terminating. Start again is the VM coming back.
//
// Why not kwok (tools/toolcache.Kwok), which the project also pins: one kwok process plays every node
// of a cluster, and it cannot let go of a single node. Removing its node annotation does not stop it
// renewing the lease (RECIPES.md), and it keeps playing the pods of that node: kwok v0.8.0's informer
// drops the update that removes the annotation instead of reporting the node gone
// (pkg/utils/informer/informer.go filters UpdateFunc by the selector), so the node stays in its managed
// set. A cut-off node's evicted pods would then be deleted at once and new pods bound to it would run,
// which is not what a dead VM does. One kwok per node would fix that at ~80 MB each (RECIPES.md), which
// the 500 MB-per-cluster budget does not allow. These kubelets cost a few goroutines and one watch each.
//
// There are no containers: nothing listens on the kubelet port, so logs, exec and probes are not
// available. The package imports client-go and the Kubernetes API types; it must not import the rest
// of the twin.
package simkubelet
