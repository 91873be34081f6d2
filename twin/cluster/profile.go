package cluster

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ProfilesVersion names this set of time profiles and defaults. It is recorded in every report next to
// the profile's name, and must change whenever a value in this file changes.
const ProfilesVersion = "timeprofiles/v2"

// TimeProfileName selects a TimeProfile. It is chosen once per twin and recorded in every report.
type TimeProfileName string

const (
	// ProfileReal is Kubernetes v1.33's defaults: a dead node is Unknown after 50 s and its pods are
	// evicted 300 s later, as on a real AKS hybrid cluster.
	ProfileReal TimeProfileName = "real"
	// ProfileFast shortens the node-failure timings (RECIPES.md "Eviction timing"): taint after ~10 s,
	// eviction after ~20 s. For tests and interactive scenarios; reports say which one ran.
	ProfileFast TimeProfileName = "fast"
)

// DefaultTimeProfile is the profile a spec gets when it names none: the real timings, so that results
// describe the estate unless a user asks for speed.
const DefaultTimeProfile = ProfileReal

// TimeProfile is every timing flag a workload cluster's components get. Both providers apply the same
// values: the embedded provider as process flags and simulated-kubelet settings, the kind provider as
// kubeadm and KubeletConfiguration patches.
type TimeProfile struct {
	Name TimeProfileName `json:"name"`

	// kube-controller-manager (node-lifecycle controller).

	// NodeMonitorPeriod is --node-monitor-period: how often node health is checked.
	NodeMonitorPeriod time.Duration `json:"nodeMonitorPeriod"`
	// NodeMonitorGracePeriod is --node-monitor-grace-period: how long a node may stop renewing its
	// lease before it is marked Unknown and tainted node.kubernetes.io/unreachable.
	NodeMonitorGracePeriod time.Duration `json:"nodeMonitorGracePeriod"`
	// NodeStartupGracePeriod is --node-startup-grace-period: the same for a node that never reported.
	NodeStartupGracePeriod time.Duration `json:"nodeStartupGracePeriod"`

	// kube-apiserver (DefaultTolerationSeconds admission plugin).

	// DefaultNotReadyTolerationSeconds is --default-not-ready-toleration-seconds: how long a pod stays
	// bound to a NotReady node before it is evicted.
	DefaultNotReadyTolerationSeconds int64 `json:"defaultNotReadyTolerationSeconds"`
	// DefaultUnreachableTolerationSeconds is --default-unreachable-toleration-seconds: the same for an
	// unreachable (Unknown) node.
	DefaultUnreachableTolerationSeconds int64 `json:"defaultUnreachableTolerationSeconds"`

	// kubelet (simulated kubelets in the embedded provider, KubeletConfiguration in kind).

	// NodeLeaseDurationSeconds is the kubelet's nodeLeaseDurationSeconds; the lease is renewed every
	// quarter of it (LeaseRenewInterval).
	NodeLeaseDurationSeconds int32 `json:"nodeLeaseDurationSeconds"`
	// NodeStatusUpdateFrequency is the kubelet's nodeStatusUpdateFrequency: how often it computes node
	// status and posts it if it changed.
	NodeStatusUpdateFrequency time.Duration `json:"nodeStatusUpdateFrequency"`
	// NodeStatusReportFrequency is the kubelet's nodeStatusReportFrequency: how often it posts node
	// status when nothing changed.
	NodeStatusReportFrequency time.Duration `json:"nodeStatusReportFrequency"`

	// Control-plane processes (etcd, kube-apiserver, controller-manager, scheduler: static pods on an AKS
	// hybrid control-plane VM) are restarted on crash with the kubelet's back-off: RestartBackoffInitial
	// first, doubling up to RestartBackoffMax, reset after a run of RestartBackoffReset.
	RestartBackoffInitial time.Duration `json:"restartBackoffInitial"`
	RestartBackoffMax     time.Duration `json:"restartBackoffMax"`
	RestartBackoffReset   time.Duration `json:"restartBackoffReset"`
}

// The kubelet's CrashLoopBackOff (procgroup.KubeletBackoff cites it: 10 s doubling to 5 min, reset after
// 10 min). Both profiles use it: it is not a flag of a v1.33 kubelet.
var (
	kubeletRestartBackoffInitial = procgroup.KubeletBackoff.Initial
	kubeletRestartBackoffMax     = procgroup.KubeletBackoff.Max
	kubeletRestartBackoffReset   = procgroup.KubeletBackoff.Reset
)

// RestartBackoff is the profile's restart back-off, for procgroup.Supervise: every process of the twin
// (control planes, Gitea, the S3 server, Flux's controllers) is restarted with it.
func (p TimeProfile) RestartBackoff() procgroup.Backoff {
	return procgroup.Backoff{Initial: p.RestartBackoffInitial, Max: p.RestartBackoffMax, Reset: p.RestartBackoffReset}
}

// kubeletLeaseRenewFraction is the share of the lease duration after which the kubelet renews it.
// Source: k8s.io/kubernetes v1.33.13 pkg/kubelet/kubelet.go, nodeLeaseRenewIntervalFraction = 0.25.
const kubeletLeaseRenewFraction = 0.25

// LeaseRenewInterval is how often a kubelet renews its node lease: a quarter of the lease duration.
func (p TimeProfile) LeaseRenewInterval() time.Duration {
	return time.Duration(float64(time.Duration(p.NodeLeaseDurationSeconds)*time.Second) * kubeletLeaseRenewFraction)
}

// realProfile is Kubernetes v1.33.13's defaults.
var realProfile = TimeProfile{
	Name: ProfileReal,
	// k8s.io/cloud-provider v0.33.13 config/v1alpha1/defaults.go: NodeMonitorPeriod 5 s.
	NodeMonitorPeriod: 5 * time.Second,
	// k8s.io/kubernetes v1.33.13 pkg/controller/nodelifecycle/config/v1alpha1/defaults.go:
	// NodeMonitorGracePeriod 50 s (40 s before v1.32; RECIPES.md measured Unknown at +45-51 s),
	// NodeStartupGracePeriod 60 s.
	NodeMonitorGracePeriod: 50 * time.Second,
	NodeStartupGracePeriod: 60 * time.Second,
	// k8s.io/kubernetes v1.33.13 plugin/pkg/admission/defaulttolerationseconds/admission.go: 300 s for
	// both (RECIPES.md measured eviction at +349 s = 50 s grace + 300 s toleration).
	DefaultNotReadyTolerationSeconds:    300,
	DefaultUnreachableTolerationSeconds: 300,
	// k8s.io/kubernetes v1.33.13 pkg/kubelet/apis/config/v1beta1/defaults.go: nodeLeaseDurationSeconds 40,
	// nodeStatusUpdateFrequency 10 s, nodeStatusReportFrequency 5 min.
	NodeLeaseDurationSeconds:  40,
	NodeStatusUpdateFrequency: 10 * time.Second,
	NodeStatusReportFrequency: 5 * time.Minute,
	RestartBackoffInitial:     kubeletRestartBackoffInitial,
	RestartBackoffMax:         kubeletRestartBackoffMax,
	RestartBackoffReset:       kubeletRestartBackoffReset,
}

// fastProfile is RECIPES.md "Simulated kubelets: kwok v0.8.0 / Eviction timing, shortened": the flags
// that measured taint at +10 s and eviction at +20 s on this machine.
var fastProfile = TimeProfile{
	Name: ProfileFast,
	// RECIPES.md: --node-monitor-period=1s --node-monitor-grace-period=10s.
	NodeMonitorPeriod:      1 * time.Second,
	NodeMonitorGracePeriod: 10 * time.Second,
	// Not shortened in RECIPES.md; the Kubernetes default (60 s) only matters for a node that never
	// reported, and the twin's nodes report at registration.
	NodeStartupGracePeriod: 60 * time.Second,
	// RECIPES.md: --default-unreachable-toleration-seconds=10 --default-not-ready-toleration-seconds=10.
	DefaultNotReadyTolerationSeconds:    10,
	DefaultUnreachableTolerationSeconds: 10,
	// RECIPES.md: "lease 8 s" (renewed every 2 s). The status frequencies stay at the kubelet defaults:
	// the node-lifecycle controller treats a renewed lease as a heartbeat, so they do not set the pace.
	NodeLeaseDurationSeconds:  8,
	NodeStatusUpdateFrequency: 10 * time.Second,
	NodeStatusReportFrequency: 5 * time.Minute,
	RestartBackoffInitial:     kubeletRestartBackoffInitial,
	RestartBackoffMax:         kubeletRestartBackoffMax,
	RestartBackoffReset:       kubeletRestartBackoffReset,
}

// Profiles returns every time profile, sorted by name.
func Profiles() []TimeProfile {
	ps := []TimeProfile{realProfile, fastProfile}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// Profile returns the named time profile; "" means DefaultTimeProfile.
func Profile(name TimeProfileName) (TimeProfile, error) {
	if name == "" {
		name = DefaultTimeProfile
	}
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
	}
	var names []string
	for _, p := range Profiles() {
		names = append(names, string(p.Name))
	}
	return TimeProfile{}, fmt.Errorf("time profile %q: %w; use one of %s", name, ErrUnknownProfile, strings.Join(names, ", "))
}
