package embedded

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// advertiseAddress is the address kube-apiserver publishes for the kubernetes Service's endpoints. It
// must not be loopback (the endpoint reconciler refuses it); RECIPES.md used 192.0.2.2, TEST-NET-1
// (RFC 5737), never routed.
const advertiseAddress = "192.0.2.2"

// serviceAccountIssuer is the issuer kubeadm clusters use (RECIPES.md kube-apiserver flags).
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// ports are a cluster's TCP ports on 127.0.0.1.
type ports struct {
	EtcdClient, EtcdPeer, APIServer, ControllerManager, Scheduler int
}

// all are the ports the cluster holds; a light cluster's etcd ports are the shared store's, held by the
// provider (zero here).
func (p ports) all() []int {
	var out []int
	for _, x := range []int{p.EtcdClient, p.EtcdPeer, p.APIServer, p.ControllerManager, p.Scheduler} {
		if x != 0 {
			out = append(out, x)
		}
	}
	return out
}

// store is where a cluster's API server keeps its objects: its own etcd (URL, no prefix), or the
// provider's shared etcd under the cluster's prefix (tier light).
type store struct {
	URL    string
	Prefix string
}

// layout is where a cluster's files live.
type layout struct {
	Dir string // the cluster's state directory
}

func (l layout) pki(name string) string { return filepath.Join(l.Dir, "pki", name) }
func (l layout) log(c cluster.Component) string {
	return filepath.Join(l.Dir, "logs", string(c)+".log")
}
func (l layout) logs() string                  { return filepath.Join(l.Dir, "logs") }
func (l layout) etcdData() string              { return filepath.Join(l.Dir, "etcd") }
func (l layout) kubeconfig(user string) string { return filepath.Join(l.Dir, user+".kubeconfig") }

// AdminKubeconfig is the kubeconfig handed to users.
func (l layout) adminKubeconfig() string { return filepath.Join(l.Dir, "kubeconfig") }

// serving are the flags the controller-manager and the scheduler share: their own kubeconfig (user name)
// for the API server and for delegated authentication and authorization, and /healthz served over TLS on
// 127.0.0.1:port with the certificate issued to name (k8s.io/component-base secure serving).
func (l layout) serving(name string, port int) []string {
	kc := l.kubeconfig(name)
	return []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + l.pki(name+".crt"),
		"--tls-private-key-file=" + l.pki(name+".key"),
	}
}

func url(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// componentArgs returns the command line of one component. Every flag below was run on this machine
// (RECIPES.md "Kubernetes control plane from Go modules"); the timing flags come from the time profile;
// the tier's flags come next, and the spec's ExtraArgs last so they override.
func componentArgs(c cluster.Component, s cluster.Spec, p cluster.TimeProfile, l layout, pt ports, st store) []string {
	var args []string
	switch c {
	case cluster.Etcd:
		args = []string{
			"--name=" + s.Name,
			"--data-dir=" + l.etcdData(),
			"--listen-client-urls=" + url(pt.EtcdClient),
			"--advertise-client-urls=" + url(pt.EtcdClient),
			"--listen-peer-urls=" + url(pt.EtcdPeer),
			"--initial-advertise-peer-urls=" + url(pt.EtcdPeer),
			"--initial-cluster=" + s.Name + "=" + url(pt.EtcdPeer),
			"--initial-cluster-state=new",
			// The twin's etcd data is thrown away with the cluster: skipping fsync keeps six clusters'
			// writes from queueing on one disk. Never for a store that must survive a crash.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		}
	case cluster.KubeAPIServer:
		args = []string{
			"--etcd-servers=" + st.URL,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(pt.APIServer),
			"--advertise-address=" + advertiseAddress,
			"--cert-dir=" + l.pki(""),
			"--tls-cert-file=" + l.pki("apiserver.crt"),
			"--tls-private-key-file=" + l.pki("apiserver.key"),
			"--client-ca-file=" + l.pki("ca.crt"),
			"--service-account-issuer=" + serviceAccountIssuer,
			"--service-account-key-file=" + l.pki("sa.pub"),
			"--service-account-signing-key-file=" + l.pki("sa.key"),
			"--service-cluster-ip-range=" + s.Network.ServiceCIDR,
			"--authorization-mode=Node,RBAC",
			// kubeadm's addition to the default admission plugins: a kubelet may only touch its own Node,
			// Lease and pods, which the simulated kubelets (running as system:node:<name>) then obey.
			"--enable-admission-plugins=NodeRestriction",
			// kubeadm sets it; without it privileged pods (CSI drivers, CNI DaemonSets) are rejected.
			"--allow-privileged=true",
			// The aggregation-layer flags; without them the controller-manager and scheduler log
			// authentication errors forever (RECIPES.md).
			"--requestheader-client-ca-file=" + l.pki("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-username-headers=X-Remote-User",
			"--proxy-client-cert-file=" + l.pki("front-proxy-client.crt"),
			"--proxy-client-key-file=" + l.pki("front-proxy-client.key"),
			fmt.Sprintf("--default-not-ready-toleration-seconds=%d", p.DefaultNotReadyTolerationSeconds),
			fmt.Sprintf("--default-unreachable-toleration-seconds=%d", p.DefaultUnreachableTolerationSeconds),
		}
		if st.Prefix != "" {
			args = append(args, "--etcd-prefix="+st.Prefix)
		}
		// Validate has refused unknown tiers.
		if t, err := cluster.LookupTier(s.Tier); err == nil {
			args = append(args, t.APIServerArgs...)
		}
	case cluster.KubeControllerManager:
		args = append(l.serving("controller-manager", pt.ControllerManager), []string{
			"--client-ca-file=" + l.pki("ca.crt"),
			"--leader-elect=false",
			"--cluster-name=" + s.Name,
			"--service-account-private-key-file=" + l.pki("sa.key"),
			"--root-ca-file=" + l.pki("ca.crt"),
			"--use-service-account-credentials=true",
			"--cluster-signing-cert-file=" + l.pki("ca.crt"),
			"--cluster-signing-key-file=" + l.pki("ca.key"),
			"--service-cluster-ip-range=" + s.Network.ServiceCIDR,
			// The real node-ipam controller gives each VM-node its pod CIDR; the simulated kubelets
			// number pod IPs from it.
			"--allocate-node-cidrs=true",
			"--cluster-cidr=" + s.Network.PodCIDR,
			"--node-cidr-mask-size=" + strconv.Itoa(s.Network.NodeCIDRMaskSize),
			"--node-monitor-period=" + p.NodeMonitorPeriod.String(),
			"--node-monitor-grace-period=" + p.NodeMonitorGracePeriod.String(),
			"--node-startup-grace-period=" + p.NodeStartupGracePeriod.String(),
		}...)
	case cluster.KubeScheduler:
		args = append(l.serving("scheduler", pt.Scheduler), "--leader-elect=false")
	}
	return append(args, s.ExtraArgs[c]...)
}

// ComponentEnv is the environment each component gets besides PATH and HOME.
//
// GOGC=50 makes the Go runtime collect when the heap grows by half instead of doubling. Measured on this
// machine (one idle 3-node cluster, 20 s after ready): kube-apiserver VmRSS 263-269 MB with Go's default,
// 230-232 MB with GOGC=50, idle CPU unchanged (1.4% of a core); the cluster total drops from ~490 to
// ~455 MB, under the 500 MB per cluster. Half of each component's RSS is its binary's mapped
// text (RssFile), shared by every cluster on the machine. A GOMEMLIMIT was not chosen: it is a fixed
// size, and an API server holding a large GitOps estate's objects would then collect continuously.
var ComponentEnv = map[cluster.Component][]string{
	cluster.Etcd:                  {"GOGC=50"},
	cluster.KubeAPIServer:         {"GOGC=50"},
	cluster.KubeControllerManager: {"GOGC=50"},
	cluster.KubeScheduler:         {"GOGC=50"},
}
