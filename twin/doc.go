// Package twin composes and runs the whole platform from one Twin spec: the hardware model places the
// VMs, each workload cluster runs as a real control plane (twin/cluster), Gitea and an OCI registry hold
// the repositories and images (twin/gitserver, twin/registry), the Azure fakes take the GitOps
// configurations (fakes/arc), and a reconciler per cluster converges them. The bridge turns the hardware
// model's events (host crash, live migration, restart) into Kubernetes node state. On a running twin,
// workload clusters can be removed (the disaster), recreated or onboarded and node pools scaled
// (lifecycle.go): the hardware model decides first, and refuses with its reason, changing nothing; as on
// a real HCI cluster, no running VM moves for it. Each cluster's reconciler has its own Prometheus
// registry (ReconcilerMetrics).
//
// It may import hardware/, fakes/, reconciler/ and its own subpackages; never scenarios/ or bench/.
package twin
