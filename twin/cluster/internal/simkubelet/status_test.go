package simkubelet

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func pod(mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec: corev1.PodSpec{
			NodeName:      "moc-1",
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if mutate != nil {
		mutate(p)
	}
	return p
}

func TestNextPodAction(t *testing.T) {
	now := metav1.Now()
	jobOwner := []metav1.OwnerReference{{Kind: "Job", Name: "j", Controller: ptr.To(true)}}
	running := func(p *corev1.Pod) {
		p.Status = RunningStatus(p, "198.51.100.10", "10.244.1.2", now.Time)
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want Action
	}{
		{"pending pod starts", pod(nil), ActionStart},
		{"pod without phase starts", pod(func(p *corev1.Pod) { p.Status.Phase = "" }), ActionStart},
		{"deleting pod is confirmed", pod(func(p *corev1.Pod) { running(p); p.DeletionTimestamp = &now }), ActionConfirmDeletion},
		{"deleting pending pod is confirmed", pod(func(p *corev1.Pod) { p.DeletionTimestamp = &now }), ActionConfirmDeletion},
		{"running pod rests", pod(running), ActionNone},
		{"job pod completes", pod(func(p *corev1.Pod) {
			p.OwnerReferences = jobOwner
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			running(p)
		}), ActionComplete},
		{"helm test pod completes", pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"helm.sh/hook": "test"}
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			running(p)
		}), ActionComplete},
		{"bare pod with restartPolicy Never keeps running", pod(func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			running(p)
		}), ActionNone},
		{"restartable job-owned pod keeps running", pod(func(p *corev1.Pod) { p.OwnerReferences = jobOwner; running(p) }), ActionNone},
		{"succeeded pod rests", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), ActionNone},
		{"gate turned true updates readiness", pod(func(p *corev1.Pod) {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
			running(p)
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/lb", Status: corev1.ConditionTrue})
		}), ActionUpdateReadiness},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextPodAction(tc.pod); got != tc.want {
				t.Fatalf("NextPodAction = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRunningStatusHonoursReadinessGatesAndSidecars(t *testing.T) {
	p := pod(func(p *corev1.Pod) {
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
		p.Spec.InitContainers = []corev1.Container{
			{Name: "init", Image: "busybox"},
			{Name: "sidecar", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
		}
	})
	s := RunningStatus(p, "198.51.100.10", "10.244.1.2", time.Now())
	if s.Phase != corev1.PodRunning || s.PodIP != "10.244.1.2" || s.HostIP != "198.51.100.10" {
		t.Fatalf("status = %+v", s)
	}
	if c := findPodCondition(s.Conditions, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Fatalf("Ready condition = %+v, want False for an unmet readiness gate", c)
	}
	if c := findPodCondition(s.Conditions, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("ContainersReady = %+v, want True", c)
	}
	if s.InitContainerStatuses[0].State.Terminated == nil || s.InitContainerStatuses[1].State.Running == nil {
		t.Fatalf("init containers: %+v", s.InitContainerStatuses)
	}
	if len(s.ContainerStatuses) != 1 || !s.ContainerStatuses[0].Ready || s.ContainerStatuses[0].State.Running == nil {
		t.Fatalf("containers: %+v", s.ContainerStatuses)
	}
}

func TestAllocatePodIP(t *testing.T) {
	p := pod(nil)
	ip, err := AllocatePodIP("10.244.3.0/24", p, map[string]bool{})
	if err != nil || ip != "10.244.3.2" {
		t.Fatalf("first IP = %q, %v; want 10.244.3.2 (.0 network, .1 gateway)", ip, err)
	}
	ip, err = AllocatePodIP("10.244.3.0/24", p, map[string]bool{"10.244.3.2": true, "10.244.3.3": true})
	if err != nil || ip != "10.244.3.4" {
		t.Fatalf("next IP = %q, %v; want 10.244.3.4", ip, err)
	}
	p.Status.PodIP = "10.244.3.77"
	if ip, _ := AllocatePodIP("10.244.3.0/24", p, map[string]bool{"10.244.3.77": true}); ip != "10.244.3.77" {
		t.Fatalf("a pod with an IP got %q, want to keep 10.244.3.77", ip)
	}
	full := map[string]bool{"10.244.3.2": true}
	if _, err := AllocatePodIP("10.244.3.0/30", pod(nil), full); !errors.Is(err, ErrNoPodIP) {
		t.Fatalf("full /30: err = %v, want ErrNoPodIP", err)
	}
	if _, err := AllocatePodIP("not-a-cidr", pod(nil), nil); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}

func TestUsedPodIPsSkipsFinishedAndHostNetworkPods(t *testing.T) {
	pods := []*corev1.Pod{
		pod(func(p *corev1.Pod) { p.UID = "a"; p.Status.PodIP = "10.244.0.2"; p.Status.Phase = corev1.PodRunning }),
		pod(func(p *corev1.Pod) { p.UID = "b"; p.Status.PodIP = "10.244.0.3"; p.Status.Phase = corev1.PodSucceeded }),
		pod(func(p *corev1.Pod) { p.UID = "c"; p.Status.PodIP = "198.51.100.10"; p.Spec.HostNetwork = true }),
		pod(func(p *corev1.Pod) { p.UID = "self"; p.Status.PodIP = "10.244.0.9" }),
	}
	used := UsedPodIPs(pods, "self")
	if len(used) != 1 || !used["10.244.0.2"] {
		t.Fatalf("used = %v, want only 10.244.0.2", used)
	}
}

func TestNodeStatusAndWhenToPostIt(t *testing.T) {
	cfg := NodeConfig{
		Name: "moc-1", IP: "198.51.100.10", OS: "linux", KubeletVersion: "v1.33.13", KubeletPort: 10250,
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("15Gi"), corev1.ResourcePods: resource.MustParse("110")},
	}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "moc-1"}}
	node.Status = NodeStatus(node, cfg, t0)
	if c := findNodeCondition(node, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "KubeletReady" {
		t.Fatalf("Ready = %+v", c)
	}

	// Healthy and recently posted: nothing to do until the report frequency passes.
	if NeedsStatusPost(node, cfg, t0.Add(10*time.Second), t0, 5*time.Minute) {
		t.Fatal("posts a healthy, fresh status")
	}
	if !NeedsStatusPost(node, cfg, t0.Add(5*time.Minute), t0, 5*time.Minute) {
		t.Fatal("does not post at the report frequency")
	}

	// The node-lifecycle controller marked it Unknown: post at once, with a new transition time.
	unknown := node.DeepCopy()
	for i := range unknown.Status.Conditions {
		unknown.Status.Conditions[i].Status = corev1.ConditionUnknown
		unknown.Status.Conditions[i].Reason = "NodeStatusUnknown"
	}
	t1 := t0.Add(time.Minute)
	if !NeedsStatusPost(unknown, cfg, t1, t1, 5*time.Minute) {
		t.Fatal("does not post after the node was marked Unknown")
	}
	after := NodeStatus(unknown, cfg, t1)
	if c := conditionIn(after, corev1.NodeReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(t1) {
		t.Fatalf("Ready after Unknown = %+v, want True with transition at %s", c, t1)
	}
	// An unchanged condition keeps its transition time.
	again := NodeStatus(node, cfg, t1)
	if c := conditionIn(again, corev1.NodeReady); !c.LastTransitionTime.Time.Equal(t0) || !c.LastHeartbeatTime.Time.Equal(t1) {
		t.Fatalf("Ready = %+v, want transition %s heartbeat %s", c, t0, t1)
	}

	// Capacity changed (VM resized): post.
	cfg2 := cfg
	cfg2.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}
	if !NeedsStatusPost(node, cfg2, t0.Add(time.Second), t0, 5*time.Minute) {
		t.Fatal("does not post a capacity change")
	}
}

func conditionIn(s corev1.NodeStatus, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}
