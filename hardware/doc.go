// Package hardware is the twin's model of the Azure Stack HCI layer under AKS hybrid, and on its own a
// capacity planner.
//
// It owns:
//   - the inventory schema (kind HCICluster: hosts, drives, volumes and their resiliency, IP and VIP pools)
//     and the plan schema (kind ClusterPlan: the management cluster and the workload clusters with their
//     control planes, load balancers and node pools), parsed strictly with errors that name file, line and field;
//   - the versioned limit profiles (aks-hci-2022, aks-arc-23h2) and the VM size catalogs, each figure with
//     its source document beside it (profiles.go);
//   - Storage Spaces Direct capacity: resiliency efficiency by node count and media, the pool reserve;
//   - placement of the AKS hybrid VMs on hosts (node pools spread across hosts), the 15% reserve and N-1
//     failover checks, IP and VIP allocation;
//   - the what-if questions (minimal host count, how many more workers fit, which host failure hurts most);
//   - Sim, a deterministic event model of planned drains (live migration), host crashes (failover restarts)
//     and repairs on an injected clock, whose events the twin turns into Kubernetes node state; and of a
//     running estate changing (PlaceVMs, ReleaseVMs: clusters created or deleted, pools scaled) without
//     moving any VM that runs, judged by the same evaluation as a plan (sim_change.go).
//
// The package is pure: it starts no goroutines, never reads the wall clock (a Sim takes a
// k8s.io/utils/clock.PassiveClock) and does no I/O except reading spec files in LoadFiles. The same inputs
// give the same results and events in the same order.
//
// It must not import Kubernetes client libraries nor do logging, and of the project only the strict spec
// decoder it shares with the twin spec (internal/specyaml): it may import the standard library, a YAML
// parser (go.yaml.in/yaml/v3), k8s.io/utils/clock and internal/specyaml.
package hardware
