package simkubelet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const strategicMerge = types.StrategicMergePatchType

var everything = labels.Everything()

// NodeConfig is what the kubelet reports about its node.
type NodeConfig struct {
	Name string
	// IP is the node's InternalIP, also the hostIP of its pods.
	IP string
	// OS is "linux" or "windows".
	OS string
	// KubeletVersion is reported in status.nodeInfo (the cluster's Kubernetes version).
	KubeletVersion string
	// Capacity and Allocatable are the VM size's resources and what pods may use of them.
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	// KubeletPort is reported in status.daemonEndpoints; nothing listens on it.
	KubeletPort int32
}

// The condition reasons and messages are the kubelet's own (k8s.io/kubernetes v1.33.13
// pkg/kubelet/nodestatus/setters.go), so anything that reads them sees what a real node shows.
var healthyConditions = []corev1.NodeCondition{
	{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
	{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
	{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
	{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
}

// NodeStatus is the status a healthy kubelet posts for node at now. Condition transition times are
// kept when a condition's status did not change.
func NodeStatus(node *corev1.Node, cfg NodeConfig, now time.Time) corev1.NodeStatus {
	t := metav1.NewTime(now)
	conds := make([]corev1.NodeCondition, 0, len(healthyConditions))
	for _, want := range healthyConditions {
		c := want
		c.LastHeartbeatTime = t
		c.LastTransitionTime = t
		if old := findNodeCondition(node, want.Type); old != nil && old.Status == want.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		conds = append(conds, c)
	}
	return corev1.NodeStatus{
		Capacity:    cfg.Capacity,
		Allocatable: cfg.Allocatable,
		Phase:       corev1.NodeRunning,
		Conditions:  conds,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: cfg.IP},
			{Type: corev1.NodeHostName, Address: cfg.Name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: cfg.KubeletPort}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               idFor("machine", cfg.Name),
			SystemUUID:              idFor("system", cfg.Name),
			BootID:                  idFor("boot", cfg.Name),
			KubeletVersion:          cfg.KubeletVersion,
			OperatingSystem:         cfg.OS,
			Architecture:            "amd64",
			OSImage:                 "hybridtwin simulated node",
			KernelVersion:           "simulated",
			ContainerRuntimeVersion: "simulated://hybridtwin",
		},
	}
}

// NeedsStatusPost reports whether a kubelet posts status now: when the node's conditions are not the
// healthy ones (e.g. the node-lifecycle controller set Ready to Unknown) or capacity differs, or when
// reportFrequency has passed since the last post.
func NeedsStatusPost(node *corev1.Node, cfg NodeConfig, now, lastPost time.Time, reportFrequency time.Duration) bool {
	if now.Sub(lastPost) >= reportFrequency {
		return true
	}
	for _, want := range healthyConditions {
		got := findNodeCondition(node, want.Type)
		if got == nil || got.Status != want.Status || got.Reason != want.Reason {
			return true
		}
	}
	return !equalResources(node.Status.Capacity, cfg.Capacity) || !equalResources(node.Status.Allocatable, cfg.Allocatable)
}

func findNodeCondition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	if node == nil {
		return nil
	}
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}

func nodeStatusPatch(s corev1.NodeStatus) ([]byte, error) {
	b, err := json.Marshal(map[string]any{"status": s})
	if err != nil {
		return nil, fmt.Errorf("encode node status: %w", err)
	}
	return b, nil
}

// Action is what the kubelet does next with a pod.
type Action string

const (
	ActionNone            Action = "none"
	ActionStart           Action = "start"            // Pending -> Running and Ready
	ActionComplete        Action = "complete"         // a Job's pod ran to completion
	ActionUpdateReadiness Action = "update-readiness" // readiness gates changed
	ActionConfirmDeletion Action = "confirm-deletion" // the pod is being deleted: remove it for good
)

// NextPodAction decides what the kubelet does with a pod bound to its node.
func NextPodAction(pod *corev1.Pod) Action {
	switch {
	case pod.DeletionTimestamp != nil:
		return ActionConfirmDeletion
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return ActionNone
	case pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending:
		return ActionStart
	case runsToCompletion(pod):
		return ActionComplete
	}
	want := readyCondition(pod, time.Time{})
	got := findPodCondition(pod.Status.Conditions, corev1.PodReady)
	if got == nil || got.Status != want.Status {
		return ActionUpdateReadiness
	}
	return ActionNone
}

// runsToCompletion: a Job's pod (restartPolicy Never or OnFailure) ends; there is no container to run,
// so it completes as soon as it started, as kwok's pod-complete stage does. So does a bare pod that is a
// Helm hook (annotation helm.sh/hook, e.g. a `helm test` pod): Helm waits for it to succeed, and its
// restartPolicy must be Never or OnFailure for that (Helm docs "Chart Tests" and "Chart Hooks").
func runsToCompletion(pod *corev1.Pod) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		return false
	}
	if _, hook := pod.Annotations["helm.sh/hook"]; hook {
		return true
	}
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// RunningStatus is the status of a pod whose containers have all started.
func RunningStatus(pod *corev1.Pod, hostIP, podIP string, now time.Time) corev1.PodStatus {
	t := metav1.NewTime(now)
	start := t
	if pod.Status.StartTime != nil {
		start = *pod.Status.StartTime
	}
	s := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    hostIP,
		HostIPs:   []corev1.HostIP{{IP: hostIP}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: &start,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: t},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: t},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: t},
			readyCondition(pod, now),
		},
	}
	for _, c := range pod.Spec.InitContainers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod, c.Name), Ready: true}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs.Started = ptr.To(true) // a sidecar keeps running
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: t}
		} else {
			cs.Started = ptr.To(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: t, FinishedAt: t, ContainerID: cs.ContainerID}
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	for _, c := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod, c.Name),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}},
		})
	}
	return s
}

// SucceededStatus is the status of a pod whose containers all exited 0.
func SucceededStatus(pod *corev1.Pod, now time.Time) corev1.PodStatus {
	t := metav1.NewTime(now)
	s := corev1.PodStatus{
		Phase: corev1.PodSucceeded,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse, LastTransitionTime: t},
			{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: t},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: t},
		},
	}
	started := t
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	}
	for _, c := range pod.Spec.Containers {
		id := containerID(pod, c.Name)
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: id, Started: ptr.To(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: t, ContainerID: id}},
		})
	}
	return s
}

// ReadinessStatus re-evaluates a running pod's Ready condition after its readiness gates changed.
func ReadinessStatus(pod *corev1.Pod, now time.Time) corev1.PodStatus {
	return corev1.PodStatus{Conditions: []corev1.PodCondition{readyCondition(pod, now)}}
}

// readyCondition is Ready=True unless a readiness gate's condition is not True (the kubelet's rule,
// k8s.io/kubernetes v1.33.13 pkg/kubelet/status/generate.go GeneratePodReadyCondition).
func readyCondition(pod *corev1.Pod, now time.Time) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)}
	for _, g := range pod.Spec.ReadinessGates {
		gc := findPodCondition(pod.Status.Conditions, g.ConditionType)
		if gc == nil || gc.Status != corev1.ConditionTrue {
			c.Status = corev1.ConditionFalse
			c.Reason = "ReadinessGatesNotReady"
			c.Message = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not true", g.ConditionType)
			break
		}
	}
	return c
}

func findPodCondition(conds []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// podStatusPatch is a strategic-merge patch of a pod's status with its UID as a precondition, the form
// the kubelet's status manager sends.
func podStatusPatch(uid types.UID, s corev1.PodStatus) ([]byte, error) {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid}, "status": s})
	if err != nil {
		return nil, fmt.Errorf("encode pod status: %w", err)
	}
	return b, nil
}

// ErrNoPodIP is returned when a node's pod CIDR has no free address left.
var ErrNoPodIP = errors.New("no free pod IP")

// AllocatePodIP returns the pod's IP in podCIDR: the one it has, else the lowest address not used by
// another live pod in used. The network address, the first host address (the node's bridge gateway, by
// CNI bridge convention) and the broadcast address are never handed out.
func AllocatePodIP(podCIDR string, pod *corev1.Pod, used map[string]bool) (string, error) {
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP, nil
	}
	_, n, err := net.ParseCIDR(podCIDR)
	if err != nil || n.IP.To4() == nil {
		return "", fmt.Errorf("node pod CIDR %q is not an IPv4 CIDR", podCIDR)
	}
	ones, bits := n.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	base := binary.BigEndian.Uint32(n.IP.To4())
	for off := uint32(2); off+1 < size; off++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+off)
		if s := ip.String(); !used[s] {
			return s, nil
		}
	}
	return "", fmt.Errorf("allocate an IP in %s for pod %s/%s: %w (a node runs at most %d pods)", podCIDR, pod.Namespace, pod.Name, ErrNoPodIP, size-3)
}

// UsedPodIPs returns the pod IPs held by live pods other than except.
func UsedPodIPs(pods []*corev1.Pod, except types.UID) map[string]bool {
	used := map[string]bool{}
	for _, p := range pods {
		if p.UID == except || p.Spec.HostNetwork || p.Status.PodIP == "" {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		used[p.Status.PodIP] = true
	}
	return used
}

func containerID(pod *corev1.Pod, name string) string {
	return "containerd://" + hashHex(string(pod.UID)+"/"+name, 64)
}

func imageID(image string) string {
	return image + "@sha256:" + hashHex(image, 64)
}

func idFor(kind, name string) string { return hashHex(kind+"/"+name, 32) }

func hashHex(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
