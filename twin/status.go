package twin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
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
	Events []BridgeRecord `json:"events,omitempty"`
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
	// Name is the Flux Kustomization's name (<configuration>-<kustomization>).
	Name string `json:"name"`
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

// kustomizationStatuses picks the Kustomizations out of a configuration's properties.statuses.
func kustomizationStatuses(sts []arc.ObjectStatus) []KustomizationStatus {
	var out []KustomizationStatus
	for _, o := range sts {
		if o.Kind != kustomizev1.KustomizationKind {
			continue
		}
		k := KustomizationStatus{Name: o.Name, ComplianceState: o.ComplianceState}
		for _, c := range o.StatusConditions {
			if c.Type == meta.ReadyCondition {
				k.Ready, k.Reason, k.Message, k.Since = c.Status, c.Reason, c.Message, c.LastTransitionTime
			}
		}
		out = append(out, k)
	}
	return out
}

// Status takes a snapshot of the twin.
func (t *Twin) Status(ctx context.Context) (*Status, error) {
	st := &Status{Name: t.spec.Metadata.Name, StateDir: t.stateDir, TimeProfile: string(t.spec.Spec.TimeProfile),
		Uptime: time.Since(t.start).Round(time.Second).String(), Info: t.Info()}
	self := os.Getpid()
	st.Components = append(st.Components, probe("gitea", t.git.PID(), t.git.URL(), portOf(t.git.URL())))
	st.Components = append(st.Components, probe("registry (in-process)", self, "http://"+t.reg.Host(), portOf(t.reg.Host())))
	st.Components = append(st.Components, t.probeArc(ctx, self))
	infos, err := t.provider.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	for _, info := range infos {
		for _, p := range info.Processes {
			c := probe(info.Name+"/"+string(p.Component), p.PID, "", p.Ports...)
			st.Components = append(st.Components, c)
		}
	}
	t.cmu.RLock()
	names := planClusterNames(t.plan)
	running := make([]*runningCluster, len(names))
	for i, n := range names {
		running[i] = t.clusters[n]
	}
	t.cmu.RUnlock()
	for i, name := range names {
		rc := running[i]
		for _, c := range rc.engine.Components() {
			if c.InProcess {
				st.Components = append(st.Components, ComponentStatus{Name: name + "/" + c.Name + " (in-process)", PID: self, Up: t.runCtx.Err() == nil})
				continue
			}
			st.Components = append(st.Components, probe(name+"/"+c.Name, c.PID, "", c.Ports...))
		}
		st.Components = append(st.Components, ComponentStatus{Name: name + "/arc-agent (in-process)", PID: self, Up: t.runCtx.Err() == nil})
	}

	for _, h := range t.bridge.Hosts() {
		st.Hosts = append(st.Hosts, HostState{Name: h.Name, State: string(h.State), VCPUUsed: h.VCPUUsed, VCPUCapacity: h.VCPUCapacity,
			MemoryUsedGiB: h.MemoryUsedGiB, MemoryCapacityGiB: h.MemoryCapacityGiB, VMs: h.VMs})
	}
	ready := map[string]string{} // cluster/node -> Ready
	for i, name := range names {
		rc := running[i]
		cs := ClusterStatus{Name: name, Server: rc.info.Server, Version: rc.info.KubernetesVersion, ArcID: rc.arcID}
		nodes, err := rc.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			cs.Error = err.Error()
		} else {
			for _, n := range nodes.Items {
				r := nodeReady(&n)
				ready[name+"/"+rc.info.VMName(n.Name)] = r // keyed by VM: a kind Node is named otherwise
				cs.Nodes = append(cs.Nodes, NodeStatus{Name: n.Name, Ready: r, Host: n.Labels[cluster.LabelHCIHost]})
			}
		}
		st.Clusters = append(st.Clusters, cs)
		for _, fc := range t.arcSrv.FluxConfigurations(rc.arcID) {
			p := fc.Properties
			st.GitOps = append(st.GitOps, GitOpsStatus{Name: fc.Name, Cluster: name, ComplianceState: p.ComplianceState,
				SyncedCommit: p.SourceSyncedCommitID, Message: p.ErrorMessage, Kustomizations: kustomizationStatuses(p.Statuses)})
		}
	}
	for _, vm := range t.bridge.VMs() {
		v := VMState{Name: vm.Name, Role: string(vm.Role), Cluster: vm.Cluster, State: string(vm.State), Host: vm.Host, NodeReady: "-", Reason: vm.Reason}
		if vm.Role == hardware.RoleWorker {
			v.NodeReady = ready[vm.Cluster+"/"+vm.Name]
			if v.NodeReady == "" {
				v.NodeReady = "missing"
			}
		}
		st.VMs = append(st.VMs, v)
	}
	st.Events = t.bridge.Records()
	return st, nil
}

// nodeReady is the node's Ready condition status, "Unknown" when it has none.
func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return string(corev1.ConditionUnknown)
}

func probe(name string, pid int, url string, ports ...int) ComponentStatus {
	c := ComponentStatus{Name: name, PID: pid, Ports: ports, URL: url, Up: true}
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		c.Up, c.Detail = false, "process not running"
		return c
	}
	for _, p := range ports {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			c.Up, c.Detail = false, fmt.Sprintf("port %d: %v", p, err)
			return c
		}
		conn.Close()
	}
	return c
}

// portOf is the port of "http://127.0.0.1:1234", "https://127.0.0.1:1234" or "127.0.0.1:1234".
func portOf(addr string) int {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, err := strconv.Atoi(trimPath(addr[i+1:]))
			if err == nil {
				return p
			}
			return 0
		}
	}
	return 0
}

func trimPath(s string) string {
	for i, r := range s {
		if r == '/' {
			return s[:i]
		}
	}
	return s
}

// probeArc checks the Arc fake with a TLS request (a bare TCP probe would make its server log a
// handshake error).
func (t *Twin) probeArc(ctx context.Context, pid int) ComponentStatus {
	c := ComponentStatus{Name: "arc fake (in-process)", PID: pid, URL: t.arcEP.URL, Ports: []int{portOf(t.arcEP.URL)}, Up: true}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.arcEP.URL+"/", nil)
	if err == nil {
		var resp *http.Response
		if resp, err = t.arcEP.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		c.Up, c.Detail = false, err.Error()
	}
	return c
}
