// Package e2e adapts any twin cluster provider (twin/cluster/embedded, twin/cluster/kind) to
// sigs.k8s.io/e2e-framework's cluster provider interface (support.E2EClusterProvider, and
// support.E2EClusterProviderWithLifeCycle for providers that can fail nodes), so envfuncs.CreateCluster,
// envfuncs.DestroyCluster, envfuncs.PerformNodeOperation and klient work with twin clusters:
//
//	p := embedded.New(embedded.Options{})
//	testenv.Setup(envfuncs.CreateCluster(e2e.New(p, spec), "workload-1"))
//	testenv.Finish(envfuncs.DestroyCluster("workload-1"))
//
// StopNode cuts a VM-node off (its kubelet falls silent) and StartNode restores it; both take the Node's
// name, as ListNode gives it, and ask the provider for its VM (cluster.Info.VMName). AddNode and
// RemoveNode are not supported: a twin's nodes are its VMs, which come from the hardware model.
//
// It imports twin/cluster and e2e-framework; it must not import a provider implementation.
package e2e
