package api

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/hostops"
)

// Status is a snapshot of a running twin: every component, host, VM, node and GitOps configuration.
type Status struct {
	Name        string            `json:"name"`
	StateDir    string            `json:"stateDir"`
	TimeProfile string            `json:"timeProfile"`
	Uptime      string            `json:"uptime"`
	Info        Info              `json:"info"`
	Components  []ComponentStatus `json:"components"`
	Hosts       []HostState       `json:"hosts"`
	VMs         []VMState         `json:"vms"`
	Clusters    []ClusterStatus   `json:"clusters"`
	GitOps      []GitOpsStatus    `json:"gitops"`
	// Events are the hardware events the bridge applied, oldest first.
	Events []hostops.Record `json:"events,omitempty"`
	// Restarts are the restarts of crashed processes (control planes, Gitea, the S3 server, Flux's
	// controllers), oldest first.
	Restarts []ProcessRestart `json:"restarts,omitempty"`
}

// ProcessRestart is one restart of a crashed process by the twin's supervisor, as a kubelet restarts a
// static pod's container.
type ProcessRestart struct {
	At time.Time `json:"at"`
	// Component is what restarted: gitea, s3 (versitygw), <cluster>/<control-plane component>,
	// <cluster>/flux <controller>.
	Component string `json:"component"`
	// Restarts is its restart count, this one included.
	Restarts int `json:"restarts"`
	// PID is the new process's; 0 when it could not start (Error says why; it is tried again).
	PID    int    `json:"pid"`
	Exited string `json:"exited"` // how the crashed process ended, e.g. "signal: killed"
	Error  string `json:"error,omitempty"`
}

// ComponentStatus is one running part: a process (PID, ports) or an in-process server (address).
type ComponentStatus struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Ports []int  `json:"ports,omitempty"`
	URL   string `json:"url,omitempty"`
	// Up is true when the process is alive and every port accepts a connection.
	Up     bool   `json:"up"`
	Detail string `json:"detail,omitempty"`
	// Restarts is how often the twin restarted the process after it crashed.
	Restarts int `json:"restarts"`
}

// HostState is one HCI host: its state, what its VMs use of its capacity (the capacity planner's:
// logical processors times the vCPU overcommit; memory less the host reserve and S2D metadata) and
// its VMs.
type HostState struct {
	Name              string   `json:"name"`
	State             string   `json:"state"`
	VCPUUsed          int      `json:"vcpuUsed"`
	VCPUCapacity      float64  `json:"vcpuCapacity"`
	MemoryUsedGiB     int      `json:"memoryUsedGiB"`
	MemoryCapacityGiB float64  `json:"memoryCapacityGiB"`
	VMs               []string `json:"vms"`
}

// VMState is one VM and, for a worker, its node.
type VMState struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Cluster string `json:"cluster,omitempty"`
	State   string `json:"state"`
	Host    string `json:"host"`
	// NodeReady is the node's Ready condition (True, False, Unknown), "-" for VMs that are not nodes.
	NodeReady string `json:"nodeReady"`
	// Reason is, for a Stranded VM, the hardware model's reason no host took it (what is short).
	Reason string `json:"reason,omitempty"`
}

// ClusterStatus is one workload cluster and its nodes.
type ClusterStatus struct {
	Name    string       `json:"name"`
	Server  string       `json:"server"`
	Version string       `json:"version"`
	ArcID   string       `json:"arcID"`
	Nodes   []NodeStatus `json:"nodes"`
	Error   string       `json:"error,omitempty"`
}

// NodeStatus is one Node as the cluster's API server reports it.
type NodeStatus struct {
	Name  string `json:"name"`
	Ready string `json:"ready"`
	Host  string `json:"host"` // the cluster.LabelHCIHost label
}

// GitOpsStatus is one fluxConfiguration's compliance, as ARM reports it.
type GitOpsStatus struct {
	Name            string `json:"name"`
	Cluster         string `json:"cluster"`
	ComplianceState string `json:"complianceState"`
	SyncedCommit    string `json:"syncedCommit,omitempty"`
	Message         string `json:"message,omitempty"`
	// Kustomizations are the configuration's Kustomizations as the Arc agent reports them
	// (properties.statuses), in the agent's order (by name).
	Kustomizations []KustomizationStatus `json:"kustomizations,omitempty"`
}

// KustomizationStatus is one Kustomization of a configuration, from properties.statuses.
type KustomizationStatus struct {
	// Name is the Flux Kustomization's name (<configuration>-<kustomization> for the configuration's
	// own), Namespace its namespace.
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// AppliedBy is "<namespace>/<name>" of the Kustomization that applied it, for one a configuration's
	// Kustomization created (ARM's appliedBy: the bootstrap layout's nested Kustomizations); empty for
	// the configuration's own.
	AppliedBy string `json:"appliedBy,omitempty"`
	// ComplianceState is the agent's per-object state: Compliant (Ready), Non-Compliant (failed) or
	// Pending (not reconciled yet, progressing, waiting on a dependency).
	ComplianceState string `json:"complianceState"`
	// Ready is its Ready condition's status (True, False, Unknown; empty before it has one); Reason and
	// Message are the condition's, Since its last transition.
	Ready   string     `json:"ready,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Message string     `json:"message,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

// Info is what the state directory's twin.json records about a running twin, for `status` when the
// control socket is gone and for scripts.
type Info struct {
	Name string `json:"name"`
	// Spec is the twin spec's absolute path.
	Spec        string    `json:"spec"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"startedAt"`
	ReadyAfter  string    `json:"readyAfter"`
	Kubeconfig  string    `json:"kubeconfig"`
	Contexts    []string  `json:"contexts"`
	GiteaURL    string    `json:"giteaURL"`
	GiteaToken  string    `json:"giteaTokenFile"`
	Registry    string    `json:"registry"`
	ArcEndpoint string    `json:"arcEndpoint"`
	Socket      string    `json:"controlSocket"`
	TimeProfile string    `json:"timeProfile"`
}

// ReadInfo reads a state directory's twin.json.
func ReadInfo(stateDir string) (*Info, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, InfoFile))
	if err != nil {
		return nil, err
	}
	var i Info
	if err := json.Unmarshal(data, &i); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(stateDir, InfoFile), err)
	}
	return &i, nil
}

// Files in the state directory.
const (
	KubeconfigFile  = "kubeconfig"
	GiteaTokenFile  = "gitea-admin-token"
	InfoFile        = "twin.json"
	ControlSocket   = "control.sock"
	DetachedLogFile = "up.log"
	// Folders of the components' own state.
	GiteaDir    = "gitea"
	RegistryDir = "registry"
	ChartsDir   = "charts"
	BucketsDir  = "buckets"
	ClustersDir = "clusters"
	EnginesDir  = "engines"
)

// SocketPath is the control socket of the twin whose state directory is stateDir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, ControlSocket) }
