package layout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// script is a recorded sequence of what the twin reported, one snapshot per poll (the last repeats):
// the converge decision logic runs on it with a fake clock. The real twin is exercised end to end by
// cmd/hybridtwin's converge tests; this covers the outcomes a real twin cannot produce on demand
// without waiting out a timeout.
type script struct {
	mu    sync.Mutex
	polls [][]layout.ConfigStatus
	n     int
}

func (s *script) GitOps(context.Context) ([]layout.ConfigStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.n, len(s.polls)-1)
	s.n++
	return s.polls[i], nil
}

// shopConfig is one configuration with infra <- apps <- web (dependsOn) and an independent jobs.
func shopConfig() []layout.Config {
	return []layout.Config{layout.FromArc("dev", "shop", layout.ScopeCluster, "flux-system", ".", "twin.yaml", []layout.ArcKustomization{
		{Name: "infra", Path: "./infra"},
		{Name: "apps", Path: "./apps", DependsOn: []string{"infra"}},
		{Name: "web", Path: "./web", DependsOn: []string{"apps"}},
		{Name: "jobs", Path: "./jobs"},
	})}
}

// run drives WaitConverge, stepping the fake clock one poll each time the wait is parked on its timer.
func run(t *testing.T, src layout.StatusSource, timeout time.Duration) (*layout.ConvergeResult, []layout.Finding, time.Duration) {
	t.Helper()
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	start := clk.Now()
	type out struct {
		res *layout.ConvergeResult
		fs  []layout.Finding
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, fs, err := layout.WaitConverge(context.Background(), src, shopConfig(), layout.ConvergeOptions{
			Commits: map[string]string{"dev/shop": "abc123"}, Start: start, Timeout: timeout, Poll: time.Second, Clock: clk})
		done <- out{res, fs, err}
	}()
	for {
		select {
		case o := <-done:
			g.Expect(o.err).NotTo(HaveOccurred())
			return o.res, o.fs, clk.Since(start)
		default:
		}
		if clk.HasWaiters() {
			clk.Step(time.Second)
			continue
		}
		g.Eventually(func() bool {
			select {
			case o := <-done:
				done <- o
				return true
			default:
				return clk.HasWaiters()
			}
		}).WithTimeout(time.Minute).WithPolling(time.Millisecond).Should(BeTrue())
	}
}

func states(res *layout.ConvergeResult) map[string]string {
	m := map[string]string{}
	for _, k := range res.Kustomizations {
		m[k.Kustomization] = k.State
	}
	return m
}

func TestConvergeOutcomes(t *testing.T) {
	g := NewWithT(t)
	st := func(c, commit, msg string) []layout.ConfigStatus {
		return []layout.ConfigStatus{{Cluster: "dev", Name: "shop", Compliance: c, Commit: commit, Message: msg}}
	}

	// The old revision is Compliant, then the new one is pending, then Compliant from the fourth poll
	// on: Ready after 3 s, confirmed by the fifth poll.
	res, fs, took := run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.Compliant, "main@sha1:0ld", ""), st(layout.Pending, "main@sha1:abc123", ""),
		st(layout.Pending, "main@sha1:abc123", ""), st(layout.Compliant, "main@sha1:abc123", ""),
	}}, time.Minute)
	g.Expect(fs).To(BeEmpty())
	g.Expect(took).To(Equal(4 * time.Second))
	for _, k := range res.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady))
		g.Expect(k.ReadyAfterSeconds).To(Equal(3.0))
	}

	// apps fails: web (behind it) is blocked, infra and jobs are not known to have failed.
	res, fs, _ = run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.NonCompliant, "main@sha1:abc123", "Kustomization/shop-apps: apply failed: Service/shop/web is invalid"),
	}}, time.Minute)
	g.Expect(states(res)).To(Equal(map[string]string{"shop-infra": layout.StateUnknown, "shop-apps": layout.StateFailed,
		"shop-web": layout.StateBlocked, "shop-jobs": layout.StateUnknown}))
	g.Expect(fs).To(HaveLen(2))
	for _, f := range fs {
		g.Expect(f.Rule).To(Equal(layout.RuleConverge))
		g.Expect(f.Severity).To(Equal(layout.Error))
		g.Expect(f.File).To(Equal("twin.yaml"))
	}
	g.Expect(fs[0].Message + fs[1].Message).To(And(ContainSubstring("Service/shop/web is invalid"), ContainSubstring("waits on shop-apps, which failed")))

	// Right after the fetch the agent still reports the previous revision's conditions: Compliant once
	// (not confirmed), then the old failure naming the old revision (ignored), then the new failure.
	res, fs, _ = run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.Compliant, "main@sha1:abc123", ""),
		st(layout.NonCompliant, "main@sha1:abc123", "Kustomization/shop-jobs: revision main@sha1:0ld000: apply failed: old"),
		st(layout.NonCompliant, "main@sha1:abc123", "Kustomization/shop-jobs: revision main@sha1:abc123: apply failed: new"),
	}}, time.Minute)
	g.Expect(states(res)).To(HaveKeyWithValue("shop-jobs", layout.StateFailed))
	g.Expect(fs).To(HaveLen(1))
	g.Expect(fs[0].Message).To(ContainSubstring("apply failed: new"))

	// Never settles: every Kustomization times out, at the timeout.
	res, fs, took = run(t, &script{polls: [][]layout.ConfigStatus{st(layout.Pending, "main@sha1:abc123", "")}}, 10*time.Second)
	g.Expect(took).To(Equal(10 * time.Second))
	g.Expect(fs).To(HaveLen(4))
	for _, k := range res.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateTimedOut))
		g.Expect(k.Message).To(ContainSubstring("still Pending after 10s"))
	}
}

func TestConvergeTimeoutFromProfile(t *testing.T) {
	g := NewWithT(t)
	p := layout.DefaultProfile()
	g.Expect(layout.DependsOnDepth(shopConfig())).To(Equal(3))
	// reconciler.DefaultProfile: GitTimeout 60 s; StageWaitTimeout 60 s + DependencyRequeue 30 s per level.
	g.Expect(layout.ConvergeTimeout(shopConfig(), p, 0)).To(Equal(60*time.Second + 3*90*time.Second))
	g.Expect(layout.ConvergeTimeout(shopConfig(), p, 5*time.Minute)).To(Equal(5*time.Minute + 60*time.Second + 3*90*time.Second))
}

// The twin reports each Kustomization's state (the Arc agent's properties.statuses): times to Ready are
// per Kustomization, from the poll that first saw it Ready at the pushed revision; a Ready condition of
// the previous revision does not count.
func TestConvergePerKustomization(t *testing.T) {
	g := NewWithT(t)
	const head, old = "main@sha1:abc123", "main@sha1:0ld000"
	ks := func(name, state, rev string) layout.KustomizationStatus {
		msg := ""
		if rev != "" {
			msg = "Applied revision: " + rev
		}
		return layout.KustomizationStatus{Name: "shop-" + name, Compliance: state, Message: msg}
	}
	st := func(c string, k ...layout.KustomizationStatus) []layout.ConfigStatus {
		return []layout.ConfigStatus{{Cluster: "dev", Name: "shop", Compliance: c, Commit: head, Kustomizations: k}}
	}
	res, fs, took := run(t, &script{polls: [][]layout.ConfigStatus{
		// Just fetched: every Kustomization still Ready at the old revision (ignored).
		st(layout.Compliant, ks("infra", layout.Compliant, old), ks("apps", layout.Compliant, old), ks("web", layout.Compliant, old), ks("jobs", layout.Compliant, old)),
		st(layout.Pending, ks("infra", layout.Compliant, head), ks("apps", layout.Pending, ""), ks("web", layout.Pending, ""), ks("jobs", layout.Compliant, head)),
		st(layout.Pending, ks("infra", layout.Compliant, head), ks("apps", layout.Compliant, head), ks("web", layout.Pending, ""), ks("jobs", layout.Compliant, head)),
		st(layout.Compliant, ks("infra", layout.Compliant, head), ks("apps", layout.Compliant, head), ks("web", layout.Compliant, head), ks("jobs", layout.Compliant, head)),
	}}, time.Minute)
	g.Expect(fs).To(BeEmpty())
	g.Expect(took).To(Equal(4 * time.Second))
	g.Expect(res.Resolution).To(Equal("kustomization"))
	after := map[string]float64{}
	for _, k := range res.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady), "%s", k.Kustomization)
		after[k.Kustomization] = k.ReadyAfterSeconds
	}
	g.Expect(after).To(Equal(map[string]float64{"shop-infra": 1, "shop-jobs": 1, "shop-apps": 2, "shop-web": 3}))

	// web fails on its own (the agent's message names only web): the others are Ready at their times,
	// not Unknown; the timeout case keeps what each Kustomization reached.
	res, fs, _ = run(t, &script{polls: [][]layout.ConfigStatus{
		{{Cluster: "dev", Name: "shop", Compliance: layout.NonCompliant, Commit: head, Message: "Kustomization/shop-web: health check failed",
			Kustomizations: []layout.KustomizationStatus{ks("infra", layout.Compliant, head), ks("apps", layout.Compliant, head),
				{Name: "shop-web", Compliance: layout.NonCompliant, Message: "health check failed"}, ks("jobs", layout.Compliant, head)}}},
	}}, time.Minute)
	g.Expect(states(res)).To(Equal(map[string]string{"shop-infra": layout.StateReady, "shop-apps": layout.StateReady,
		"shop-web": layout.StateFailed, "shop-jobs": layout.StateReady}))
	g.Expect(fs).To(HaveLen(1))
	g.Expect(fs[0].Message).To(ContainSubstring("health check failed"))

	res, fs, _ = run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.Pending, ks("infra", layout.Compliant, head), ks("apps", layout.Pending, ""), ks("web", layout.Pending, ""), ks("jobs", layout.Compliant, head)),
	}}, 5*time.Second)
	g.Expect(states(res)).To(Equal(map[string]string{"shop-infra": layout.StateReady, "shop-apps": layout.StateTimedOut,
		"shop-web": layout.StateTimedOut, "shop-jobs": layout.StateReady}))
	g.Expect(fs).To(HaveLen(2))
	g.Expect(fs[0].Message).To(ContainSubstring("still Pending after 5s"))

	// A twin without per-Kustomization states: per configuration, as before.
	res, _, _ = run(t, &script{polls: [][]layout.ConfigStatus{{{Cluster: "dev", Name: "shop", Compliance: layout.Compliant, Commit: head}}}}, time.Minute)
	g.Expect(res.Resolution).To(Equal("configuration"))
}

// The bootstrap layout: Kustomizations a configuration's Kustomization applied are reported by the Arc
// agent with appliedBy; each gets its own time to Ready, or a finding naming who applied it.
func TestConvergeNestedKustomizations(t *testing.T) {
	g := NewWithT(t)
	const head = "main@sha1:abc123"
	own := func(name string) layout.KustomizationStatus {
		return layout.KustomizationStatus{Name: "shop-" + name, Compliance: layout.Compliant, Message: "Applied revision: " + head}
	}
	nested := func(name, state, msg string) layout.KustomizationStatus {
		return layout.KustomizationStatus{Name: name, Namespace: "flux-system", AppliedBy: "flux-system/shop-infra", Compliance: state, Message: msg}
	}
	all := []layout.KustomizationStatus{own("infra"), own("apps"), own("web"), own("jobs")}
	st := func(c string, k ...layout.KustomizationStatus) []layout.ConfigStatus {
		return []layout.ConfigStatus{{Cluster: "dev", Name: "shop", Compliance: c, Commit: head, Kustomizations: append(append([]layout.KustomizationStatus(nil), all...), k...)}}
	}
	res, fs, _ := run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.Pending, nested("cert-manager", layout.Pending, "")),
		st(layout.Pending, nested("cert-manager", layout.Compliant, "Applied revision: "+head), nested("ingress", layout.Pending, "")),
		st(layout.Compliant, nested("cert-manager", layout.Compliant, "Applied revision: "+head), nested("ingress", layout.Compliant, "Applied revision: "+head)),
	}}, time.Minute)
	g.Expect(fs).To(BeEmpty())
	times := map[string]float64{}
	for _, k := range res.Kustomizations {
		if k.AppliedBy != "" {
			g.Expect(k.AppliedBy).To(Equal("flux-system/shop-infra"))
			times[k.Kustomization] = k.ReadyAfterSeconds
		}
	}
	g.Expect(times).To(Equal(map[string]float64{"flux-system/cert-manager": 1, "flux-system/ingress": 2}))

	res, fs, _ = run(t, &script{polls: [][]layout.ConfigStatus{
		st(layout.NonCompliant, nested("ingress", layout.NonCompliant, "kustomization path not found: stat ./ingress")),
	}}, time.Minute)
	g.Expect(states(res)).To(HaveKeyWithValue("flux-system/ingress", layout.StateFailed))
	g.Expect(fs).To(ContainElement(HaveField("Message", ContainSubstring("applied by Kustomization flux-system/shop-infra): kustomization path not found"))))
}
