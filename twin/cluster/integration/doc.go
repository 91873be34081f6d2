// Package integration holds the integration tests of the twin's workload clusters: real etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler from the tool cache, with the simulated
// kubelets, driven through client-go and e2e-framework. It has no code outside its tests.
//
// TestMain starts the two clusters of examples/clusters/two-clusters.yaml (on the fast time profile) in
// parallel, once, the first time a test asks for them; the tests share them. The Ctrl-C, parent-death
// and failed-start tests use one small cluster each. Run: go test ./twin/cluster/integration/
package integration
