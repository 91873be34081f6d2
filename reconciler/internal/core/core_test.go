package core

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func k(n string) Key { return Key{Namespace: "flux-system", Name: n} }

func TestGraph(t *testing.T) {
	cases := []struct {
		name      string
		deps      map[Key][]Key
		wantCycle []Key
		wantOrder []Key
	}{
		{name: "chain", deps: map[Key][]Key{k("apps"): {k("infra")}, k("infra"): {k("crds")}, k("crds"): nil},
			wantOrder: []Key{k("crds"), k("infra"), k("apps")}},
		{name: "diamond", deps: map[Key][]Key{k("d"): {k("b"), k("c")}, k("b"): {k("a")}, k("c"): {k("a")}, k("a"): nil},
			wantOrder: []Key{k("a"), k("b"), k("c"), k("d")}},
		{name: "missing dependency is not a cycle", deps: map[Key][]Key{k("a"): {k("ghost")}},
			wantOrder: []Key{k("a")}},
		{name: "self", deps: map[Key][]Key{k("a"): {k("a")}}, wantCycle: []Key{k("a"), k("a")}},
		{name: "three", deps: map[Key][]Key{k("a"): {k("b")}, k("b"): {k("c")}, k("c"): {k("a")}, k("x"): {k("a")}},
			wantCycle: []Key{k("a"), k("b"), k("c"), k("a")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGraph(tc.deps)
			if tc.wantCycle != nil {
				var ce *CycleError
				if !errors.As(err, &ce) || !errors.Is(err, ErrDependencyCycle) {
					t.Fatalf("want *CycleError, got %v", err)
				}
				if d := cmp.Diff(tc.wantCycle, ce.Path); d != "" {
					t.Fatalf("cycle path (-want +got):\n%s", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantOrder, g.Order()); d != "" {
				t.Fatalf("order (-want +got):\n%s", d)
			}
		})
	}
}

func TestCycleErrorMessage(t *testing.T) {
	_, err := NewGraph(map[Key][]Key{k("a"): {k("b")}, k("b"): {k("a")}})
	want := "dependsOn forms a cycle: flux-system/a -> flux-system/b -> flux-system/a; remove one of these dependsOn entries"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestGraphSetIncremental(t *testing.T) {
	g, _ := NewGraph(nil)
	for _, step := range []struct {
		k    Key
		deps []Key
	}{{k("b"), []Key{k("a")}}, {k("c"), []Key{k("b")}}, {k("a"), nil}} {
		if err := g.Set(step.k, step.deps); err != nil {
			t.Fatal(err)
		}
	}
	err := g.Set(k("a"), []Key{k("c")})
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("want cycle, got %v", err)
	}
	if d := cmp.Diff([]Key{k("a"), k("c"), k("b"), k("a")}, ce.Path); d != "" {
		t.Fatalf("path (-want +got):\n%s", d)
	}
	if len(g.DependsOn(k("a"))) != 0 {
		t.Fatal("a rejected Set must not change the graph")
	}
	if err := g.Set(k("a"), []Key{k("a")}); err == nil {
		t.Fatal("self dependency must be a cycle")
	}
	if d := cmp.Diff([]Key{k("b")}, g.Dependents(k("a"))); d != "" {
		t.Fatal(d)
	}
	g.Remove(k("b"))
	if len(g.Dependents(k("a"))) != 0 {
		t.Fatal("Remove must drop b's edges")
	}
	if d := cmp.Diff([]Key{k("a"), k("c")}, g.Nodes()); d != "" {
		t.Fatal(d)
	}
}

func TestDependents(t *testing.T) {
	g, err := NewGraph(map[Key][]Key{k("b"): {k("a")}, k("c"): {k("a")}, k("a"): nil})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Key{k("b"), k("c")}, g.Dependents(k("a"))); d != "" {
		t.Fatal(d)
	}
}

func TestAdmit(t *testing.T) {
	tm := Timing{Interval: 10 * time.Minute, RetryInterval: 2 * time.Minute, DependencyRequeue: 30 * time.Second}
	ready := DependencyStatus{Key: k("infra"), Found: true, Ready: true, Observed: true, LastAppliedRevision: "main@sha1:1", SameSource: true}
	cases := []struct {
		name string
		in   GateInput
		want Verdict
	}{
		{name: "suspended", in: GateInput{Suspended: true}, want: Verdict{}},
		{name: "no source", in: GateInput{SourceName: "GitRepository/flux-system/repo"},
			want: Verdict{Reason: ReasonArtifactFailed, Message: "Source 'GitRepository/flux-system/repo' not found", RequeueAfter: 2 * time.Minute}},
		{name: "no artifact", in: GateInput{SourceFound: true},
			want: Verdict{Reason: ReasonArtifactFailed, Message: "Source artifact not found, retrying in 30s", RequeueAfter: 30 * time.Second}},
		{name: "deps ready", in: GateInput{SourceFound: true, SourceRevision: "main@sha1:1", Dependencies: []DependencyStatus{ready}},
			want: Verdict{Proceed: true}},
		{name: "dep missing", in: GateInput{SourceFound: true, SourceRevision: "main@sha1:1", Dependencies: []DependencyStatus{{Key: k("infra")}}},
			want: Verdict{Reason: ReasonDependencyNotReady, Message: "dependency 'flux-system/infra' not found: kustomizations.kustomize.toolkit.fluxcd.io \"infra\" not found", WaitingOn: []Key{k("infra")}, RequeueAfter: 30 * time.Second}},
		{name: "dep stale generation", in: GateInput{SourceFound: true, SourceRevision: "main@sha1:1",
			Dependencies: []DependencyStatus{{Key: k("infra"), Found: true, Ready: true}}},
			want: Verdict{Reason: ReasonDependencyNotReady, Message: "dependency 'flux-system/infra' is not ready", WaitingOn: []Key{k("infra")}, RequeueAfter: 30 * time.Second}},
		{name: "dep behind source", in: GateInput{SourceFound: true, SourceRevision: "main@sha1:2", Dependencies: []DependencyStatus{ready}},
			want: Verdict{Reason: ReasonDependencyNotReady, Message: "dependency 'flux-system/infra' revision is not up to date", WaitingOn: []Key{k("infra")}, RequeueAfter: 30 * time.Second}},
		{name: "dep other source at other revision", in: GateInput{SourceFound: true, SourceRevision: "main@sha1:2",
			Dependencies: []DependencyStatus{{Key: k("infra"), Found: true, Ready: true, Observed: true, LastAppliedRevision: "v1@sha1:9"}}},
			want: Verdict{Proceed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, Admit(tc.in, tm)); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestRequeueAfter(t *testing.T) {
	tm := Timing{Interval: 10 * time.Minute, RetryInterval: 2 * time.Minute}
	if got := RequeueAfter(Succeeded, tm, nil); got != 10*time.Minute {
		t.Fatalf("succeeded: %s", got)
	}
	if got := RequeueAfter(Failed, tm, nil); got != 2*time.Minute {
		t.Fatalf("failed: %s", got)
	}
	if got := RequeueAfter(Stalled, tm, nil); got != 0 {
		t.Fatalf("stalled: %s", got)
	}
	half := func(d time.Duration) time.Duration { return d / 2 }
	if got := RequeueAfter(Succeeded, tm, half); got != 5*time.Minute {
		t.Fatalf("jitter: %s", got)
	}
}

// TestSchedulerWithFakeClock drives the scheduler the way the controller does: reconcile, requeue at the
// outcome's time, step the clock, collect what is due.
func TestSchedulerWithFakeClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	tm := Timing{Interval: 10 * time.Minute, RetryInterval: time.Minute, DependencyRequeue: 30 * time.Second}
	s := NewScheduler[Key]()

	s.Set(k("ok"), clk.Now().Add(RequeueAfter(Succeeded, tm, nil)))
	s.Set(k("broken"), clk.Now().Add(RequeueAfter(Failed, tm, nil)))
	s.Set(k("waiting"), clk.Now().Add(Admit(GateInput{SourceFound: true}, tm).RequeueAfter))

	if got := s.Due(clk.Now()); len(got) != 0 {
		t.Fatalf("nothing is due at start, got %v", got)
	}
	clk.Step(30 * time.Second)
	if d := cmp.Diff([]Key{k("waiting")}, s.Due(clk.Now())); d != "" {
		t.Fatal(d)
	}
	clk.Step(30 * time.Second)
	if d := cmp.Diff([]Key{k("broken")}, s.Due(clk.Now())); d != "" {
		t.Fatal(d)
	}
	// A trigger reconciles "ok" early; its next run moves to interval after that.
	s.Set(k("ok"), clk.Now().Add(tm.Interval))
	clk.Step(9 * time.Minute)
	if got := s.Due(clk.Now()); len(got) != 0 {
		t.Fatalf("ok was rescheduled, got %v", got)
	}
	next, _ := s.Next()
	if want := clk.Now().Add(time.Minute); !next.Equal(want) {
		t.Fatalf("next %s, want %s", next, want)
	}
	clk.Step(time.Minute)
	if d := cmp.Diff([]Key{k("ok")}, s.Due(clk.Now())); d != "" {
		t.Fatal(d)
	}
	s.Set(k("gone"), clk.Now())
	s.Cancel(k("gone"))
	if s.Len() != 0 {
		t.Fatalf("want empty, have %d", s.Len())
	}
}

func TestSchedulerTiesInInsertionOrder(t *testing.T) {
	at := time.Unix(100, 0)
	s := NewScheduler[string]()
	for _, n := range []string{"c", "a", "b"} {
		s.Set(n, at)
	}
	if d := cmp.Diff([]string{"c", "a", "b"}, s.Due(at)); d != "" {
		t.Fatal(d)
	}
}

func cm(data map[string]any, annotations map[string]any) map[string]any {
	md := map[string]any{"name": "cm", "namespace": "ns"}
	if annotations != nil {
		md["annotations"] = annotations
	}
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}
}

func TestDriftedFields(t *testing.T) {
	deploy := func(replicas any, image string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "d", "resourceVersion": "7"},
			"spec": map[string]any{"replicas": replicas, "template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "app", "image": image}}}}}}
	}
	live := deploy(int64(3), "nginx:1")
	live["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["imagePullPolicy"] = "IfNotPresent"
	live["status"] = map[string]any{"readyReplicas": int64(1)}
	cases := []struct {
		name    string
		desired map[string]any
		live    map[string]any
		ignore  []string
		want    []string
	}{
		{name: "equal with server defaults and int types", desired: deploy(3, "nginx:1"), live: live},
		{name: "replicas and image", desired: deploy(2, "nginx:2"), live: live,
			want: []string{"/spec/replicas", "/spec/template/spec/containers/0/image"}},
		{name: "ignored replicas", desired: deploy(2, "nginx:1"), live: live, ignore: []string{"/spec/replicas"}},
		{name: "data value", desired: cm(map[string]any{"k": "v"}, nil), live: cm(map[string]any{"k": "edited"}, nil),
			want: []string{"/data/k"}},
		{name: "deleted key", desired: cm(map[string]any{"k": "v", "x": "y"}, nil), live: cm(map[string]any{"k": "v"}, nil),
			want: []string{"/data/x"}},
		{name: "extra live key is not drift", desired: cm(map[string]any{"k": "v"}, nil), live: cm(map[string]any{"k": "v", "extra": "1"}, nil)},
		{name: "annotation with slash", desired: cm(nil, map[string]any{"a.io/b": "1"}), live: cm(nil, map[string]any{"a.io/b": "2"}),
			want: []string{"/metadata/annotations/a.io~1b"}},
		{name: "root ignore", desired: cm(map[string]any{"k": "v"}, nil), live: cm(map[string]any{"k": "x"}, nil), ignore: []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ign [][]string
			for _, p := range tc.ignore {
				toks, err := ParsePointer(p)
				if err != nil {
					t.Fatal(err)
				}
				ign = append(ign, toks)
			}
			if d := cmp.Diff(tc.want, DriftedFields(tc.desired, tc.live, ign)); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPlanObject(t *testing.T) {
	desired := cm(map[string]any{"k": "v"}, nil)
	cases := []struct {
		name string
		s    ObjectState
		want Action
	}{
		{name: "absent", s: ObjectState{Desired: desired}, want: ActionCreate},
		{name: "unknown last applied", s: ObjectState{Desired: desired, Live: desired}, want: ActionUpdate},
		{name: "unchanged", s: ObjectState{Desired: desired, Live: desired, LastApplied: desired}, want: ActionUnchanged},
		{name: "git changed", s: ObjectState{Desired: desired, Live: desired, LastApplied: cm(map[string]any{"k": "old"}, nil)}, want: ActionUpdate},
		{name: "live drifted", s: ObjectState{Desired: desired, Live: cm(map[string]any{"k": "x"}, nil), LastApplied: desired}, want: ActionUpdate},
		{name: "reconcile disabled in git", s: ObjectState{Desired: cm(nil, map[string]any{ReconcileKey: "disabled"})}, want: ActionSkip},
		{name: "reconcile disabled in cluster", s: ObjectState{Desired: desired, Live: cm(nil, map[string]any{ReconcileKey: "Disabled"})}, want: ActionSkip},
		{name: "if not present, absent", s: ObjectState{Desired: cm(nil, map[string]any{SSAKey: "IfNotPresent"})}, want: ActionCreate},
		{name: "if not present, present", s: ObjectState{Desired: cm(nil, map[string]any{SSAKey: "IfNotPresent"}), Live: desired}, want: ActionSkip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlanObject(tc.s); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStale(t *testing.T) {
	a := ObjID{Kind: "ConfigMap", Namespace: "ns", Name: "a"}
	b := ObjID{Kind: "ConfigMap", Namespace: "ns", Name: "b"}
	n := ObjID{Kind: "Namespace", Name: "ns"}
	if d := cmp.Diff([]ObjID{b, n}, Stale([]ObjID{n, a, b}, []ObjID{a})); d != "" {
		t.Fatal(d)
	}
	if got := Stale(nil, []ObjID{a}); got != nil {
		t.Fatalf("want nil, got %v", got)
	}
	if got := a.String(); got != "ns_a__ConfigMap" {
		t.Fatalf("inventory id %q", got)
	}
}

func TestAdoptIgnored(t *testing.T) {
	desired := map[string]any{"spec": map[string]any{"replicas": int64(1), "paused": false}}
	live := map[string]any{"spec": map[string]any{"replicas": int64(5)}}
	ign := [][]string{{"spec", "replicas"}, {"spec", "paused"}}
	got := AdoptIgnored(desired, live, ign)
	want := map[string]any{"spec": map[string]any{"replicas": int64(5)}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	if desired["spec"].(map[string]any)["replicas"] != int64(1) {
		t.Fatal("desired was modified")
	}
	if d := cmp.Diff(desired, AdoptIgnored(desired, nil, ign)); d != "" {
		t.Fatal("create must not adopt: " + d)
	}
}

func TestPointer(t *testing.T) {
	toks, err := ParsePointer("/metadata/labels/app.kubernetes.io~1name")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"metadata", "labels", "app.kubernetes.io/name"}, toks); d != "" {
		t.Fatal(d)
	}
	if FormatPointer(toks) != "/metadata/labels/app.kubernetes.io~1name" {
		t.Fatal("round trip")
	}
	if _, err := ParsePointer("spec"); !errors.Is(err, ErrInvalidPointer) {
		t.Fatalf("want ErrInvalidPointer, got %v", err)
	}
	doc := map[string]any{"a": []any{"x", "y", "z"}}
	if !RemovePointer(doc, []string{"a", "1"}) {
		t.Fatal("remove list item")
	}
	if d := cmp.Diff(map[string]any{"a": []any{"x", "z"}}, doc); d != "" {
		t.Fatal(d)
	}
}
