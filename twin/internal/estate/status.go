package estate

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
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// kustomizationStatuses picks the Kustomizations out of a configuration's properties.statuses.
func kustomizationStatuses(sts []arc.ObjectStatus) []api.KustomizationStatus {
	var out []api.KustomizationStatus
	for _, o := range sts {
		if o.Kind != kustomizev1.KustomizationKind {
			continue
		}
		k := api.KustomizationStatus{Name: o.Name, Namespace: o.Namespace, ComplianceState: o.ComplianceState}
		if o.AppliedBy != nil {
			k.AppliedBy = o.AppliedBy.Namespace + "/" + o.AppliedBy.Name
		}
		for _, c := range o.StatusConditions {
			if c.Type == meta.ReadyCondition {
				k.Ready, k.Reason, k.Message, k.Since = c.Status, c.Reason, c.Message, c.LastTransitionTime
			}
		}
		out = append(out, k)
	}
	return out
}

// api.Status takes a snapshot of the twin.
func (e *Estate) Status(ctx context.Context) (*api.Status, error) {
	st := &api.Status{Name: e.spec.Metadata.Name, StateDir: e.stateDir, TimeProfile: string(e.spec.Spec.TimeProfile),
		Uptime: time.Since(e.start).Round(time.Second).String(), Info: e.Info()}
	self := os.Getpid()
	gitea := probe("gitea", e.git.PID(), e.git.URL(), portOf(e.git.URL()))
	gitea.Restarts = e.git.Restarts()
	st.Components = append(st.Components, gitea)
	st.Components = append(st.Components, probe("registry (in-process)", self, "http://"+e.reg.Host(), portOf(e.reg.Host())))
	st.Components = append(st.Components, e.probeArc(ctx, self))
	if e.s3 != nil {
		s3 := probe("s3 (versitygw)", e.s3.PID(), e.s3.URL(), portOf(e.s3.Endpoint()))
		s3.Restarts = e.s3.Restarts()
		st.Components = append(st.Components, s3)
	}
	infos, err := e.provider.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	for _, info := range infos {
		for _, p := range info.Processes {
			c := probe(info.Name+"/"+string(p.Component), p.PID, "", p.Ports...)
			c.Restarts = p.Restarts
			st.Components = append(st.Components, c)
		}
	}
	e.cmu.RLock()
	names := planClusterNames(e.plan)
	running := make([]*Cluster, len(names))
	for i, n := range names {
		running[i] = e.clusters[n]
	}
	e.cmu.RUnlock()
	for i, name := range names {
		rc := running[i]
		for _, c := range rc.engine.Components() {
			if c.InProcess {
				st.Components = append(st.Components, api.ComponentStatus{Name: name + "/" + c.Name + " (in-process)", PID: self, Up: e.runCtx.Err() == nil})
				continue
			}
			pc := probe(name+"/"+c.Name, c.PID, "", c.Ports...)
			pc.Restarts = c.Restarts
			st.Components = append(st.Components, pc)
		}
		for _, c := range rc.addons {
			st.Components = append(st.Components, probe(name+"/"+c.Name, c.PID, "", c.Ports...))
		}
		if rc.notify != nil {
			p := rc.notify.Process()
			st.Components = append(st.Components, probe(name+"/flux "+p.Name, p.PID, "", p.Ports...))
		}
		st.Components = append(st.Components, api.ComponentStatus{Name: name + "/arc-agent (in-process)", PID: self, Up: e.runCtx.Err() == nil})
	}

	for _, h := range e.bridge.Hosts() {
		st.Hosts = append(st.Hosts, api.HostState{Name: h.Name, State: string(h.State), VCPUUsed: h.VCPUUsed, VCPUCapacity: h.VCPUCapacity,
			MemoryUsedGiB: h.MemoryUsedGiB, MemoryCapacityGiB: h.MemoryCapacityGiB, VMs: h.VMs})
	}
	ready := map[string]string{} // cluster/node -> Ready
	for i, name := range names {
		rc := running[i]
		cs := api.ClusterStatus{Name: name, Server: rc.info.Server, Version: rc.info.KubernetesVersion, ArcID: rc.arcID}
		nodes, err := rc.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			cs.Error = err.Error()
		} else {
			for _, n := range nodes.Items {
				r := nodeReady(&n)
				ready[name+"/"+rc.info.VMName(n.Name)] = r // keyed by VM: a kind Node is named otherwise
				cs.Nodes = append(cs.Nodes, api.NodeStatus{Name: n.Name, Ready: r, Host: n.Labels[cluster.LabelHCIHost]})
			}
		}
		st.Clusters = append(st.Clusters, cs)
		for _, fc := range e.arcSrv.FluxConfigurations(rc.arcID) {
			p := fc.Properties
			st.GitOps = append(st.GitOps, api.GitOpsStatus{Name: fc.Name, Cluster: name, ComplianceState: p.ComplianceState,
				SyncedCommit: p.SourceSyncedCommitID, Message: p.ErrorMessage, Kustomizations: kustomizationStatuses(p.Statuses)})
		}
	}
	for _, vm := range e.bridge.VMs() {
		v := api.VMState{Name: vm.Name, Role: string(vm.Role), Cluster: vm.Cluster, State: string(vm.State), Host: vm.Host, NodeReady: "-", Reason: vm.Reason}
		if vm.Role == hardware.RoleWorker {
			v.NodeReady = ready[vm.Cluster+"/"+vm.Name]
			if v.NodeReady == "" {
				v.NodeReady = "missing"
			}
		}
		st.VMs = append(st.VMs, v)
	}
	st.Events = e.bridge.Records()
	st.Restarts = e.Restarts()
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

func probe(name string, pid int, url string, ports ...int) api.ComponentStatus {
	c := api.ComponentStatus{Name: name, PID: pid, Ports: ports, URL: url, Up: true}
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
func (e *Estate) probeArc(ctx context.Context, pid int) api.ComponentStatus {
	c := api.ComponentStatus{Name: "arc fake (in-process)", PID: pid, URL: e.arcEP.URL, Ports: []int{portOf(e.arcEP.URL)}, Up: true}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.arcEP.URL+"/", nil)
	if err == nil {
		var resp *http.Response
		if resp, err = e.arcEP.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		c.Up, c.Detail = false, err.Error()
	}
	return c
}
