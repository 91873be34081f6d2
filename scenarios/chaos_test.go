package scenarios

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// giteaOutage is how long Gitea is down while pushes go on: "Gitea down for a minute during pushes"
// (issue 22, What to build).
const giteaOutage = time.Minute

// chaosSpecs: issue 22's chaos scenarios on the default twin. Each kills a component with SIGKILL (as
// `kill -9` does) while the twin reconciles or takes a push, waits for the twin's supervisor to restart
// it (procgroup.Supervise, the kubelet's back-off of the time profile), and asserts the end state: every
// configuration Compliant at main's head and every object Git builds live in its cluster
// (expectLayoutConverged), so nothing was lost or half-applied. The time to recover goes to the report,
// the restarts into its timeline.
func chaosSpecs() {
	Describe("chaos", Label("chaos", "slow"), Ordered, func() {
		for _, comp := range []string{"kube-apiserver", "etcd"} {
			It(fmt.Sprintf("recovers from kill -9 of a cluster's %s during a reconcile: restarted, nodes Ready, the pushed commit applied everywhere", comp), func(ctx SpecContext) {
				c := env.Twin.Spec().ClusterNames()[0]
				expectKillDuringReconcile(ctx, env, c+"/"+comp, c)
			})
		}

		It("recovers from kill -9 of Gitea during a push: restarted on the same port with its repositories, the retried push applied everywhere", func(ctx SpecContext) {
			start := time.Now()
			tl := NewTimeline(start)
			exp := Experiment("chaos: gitea killed during a push")
			before := component(ctx, env, "gitea")
			val := fmt.Sprintf("chaos-gitea-%d", GinkgoRandomSeed())
			dir := env.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  CHAOS: \""+val+"\"\n")
			pushed := make(chan error, 1)
			go func() {
				defer GinkgoRecover()
				_, err := pushOnce(ctx, env, dir, "chaos: "+val)
				pushed <- err
			}()
			Expect(syscall.Kill(before.PID, syscall.SIGKILL)).To(Succeed())
			tl.Add(time.Now(), "killed", fmt.Sprintf("gitea (pid %d), a push in flight", before.PID))
			if err := <-pushed; err != nil {
				tl.Add(time.Now(), "push failed", err.Error())
			}
			waitRestarted(ctx, env, "gitea", before, tl)
			recordTiming(exp, "gitea killed: restarted and answering", time.Since(start))
			commit := pushUntilAccepted(ctx, env, dir, "chaos: "+val)
			tl.Add(time.Now(), "pushed", commit[:12])
			waitConfigValue(ctx, env, exp, start, "CHAOS", val, "gitea killed: push applied")
			expectLayoutConverged(ctx, env)
			recordTiming(exp, "gitea killed: converged", time.Since(start))
			addRestarts(ctx, env, tl, start)
		})

		It(fmt.Sprintf("survives Gitea down for %s during pushes: pushes wait, fetches fail and retry, the last push applied everywhere", giteaOutage), func(ctx SpecContext) {
			start := time.Now()
			tl := NewTimeline(start)
			exp := Experiment("chaos: gitea down during pushes")
			g := component(ctx, env, "gitea")
			// Down, not crashed: the whole process group stopped (SIGSTOP), so connections hang as they do
			// when the Git server's VM is unreachable; the supervisor sees no exit and restarts nothing.
			Expect(syscall.Kill(-g.PID, syscall.SIGSTOP)).To(Succeed())
			resumed := false
			resume := func() {
				if !resumed {
					resumed = true
					Expect(syscall.Kill(-g.PID, syscall.SIGCONT)).To(Succeed())
				}
			}
			DeferCleanup(resume)
			tl.Add(time.Now(), "gitea down", fmt.Sprintf("process group %d stopped for %s", g.PID, giteaOutage))
			var last string
			var commits []string
			for i := 1; i <= 2; i++ {
				last = fmt.Sprintf("chaos-outage-%d-%d", GinkgoRandomSeed(), i)
				dir := env.WorkingCopy()
				replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  CHAOS: \""+last+"\"\n")
				// Each push is a CI job's: it waits up to a quarter of the outage, then fails; the next one retries.
				pctx, cancel := context.WithTimeout(ctx, giteaOutage/4)
				_, err := pushOnce(pctx, env, dir, "chaos: "+last)
				cancel()
				Expect(err).To(HaveOccurred(), "a push to a stopped Gitea cannot succeed")
				tl.Add(time.Now(), "push failed", fmt.Sprintf("attempt %d: %v", i, err))
			}
			if d := giteaOutage - time.Since(start); d > 0 {
				// The outage lasts its stated time: this is the fault's duration, not a wait for a condition.
				<-time.After(d)
			}
			resume()
			tl.Add(time.Now(), "gitea up", "process group continued")
			dir := env.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  CHAOS: \""+last+"\"\n")
			commits = append(commits, pushUntilAccepted(ctx, env, dir, "chaos: "+last))
			back := time.Now()
			waitConfigValue(ctx, env, exp, back, "CHAOS", last, "gitea outage over: last push applied")
			expectLayoutConverged(ctx, env)
			recordTiming(exp, "gitea outage over: converged", time.Since(back))
			Expect(component(ctx, env, "gitea").Restarts).To(Equal(g.Restarts), "a stopped Gitea is not a crashed one")
			Note("Gitea stopped for %s; two pushes failed during it; commit %.12s pushed after, applied on %v", giteaOutage, commits[0], env.Twin.Spec().ClusterNames())
		}, NodeTimeout(giteaOutage+10*time.Minute))
	})
}

// expectKillDuringReconcile pushes a change, kills comp (a <cluster>/<component> of status) at once, while
// the engines fetch and apply it, and waits for: the restart, the cluster's API answering and its nodes
// Ready within Waits.Restart, the change applied on every cluster and the whole layout converged.
func expectKillDuringReconcile(ctx context.Context, e *Env, comp, clusterName string) {
	start := time.Now()
	tl := NewTimeline(start)
	exp := Experiment("chaos: " + comp + " killed during a reconcile")
	before := component(ctx, e, comp)
	val := fmt.Sprintf("chaos-%s-%d", strings.ReplaceAll(comp, "/", "-"), GinkgoRandomSeed())
	dir := e.WorkingCopy()
	replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  CHAOS: \""+val+"\"\n")
	commit := e.Push(ctx, "main", dir, "chaos: "+val)
	tl.Add(time.Now(), "pushed", commit[:12])
	Expect(syscall.Kill(before.PID, syscall.SIGKILL)).To(Succeed())
	killed := time.Now()
	tl.Add(killed, "killed", fmt.Sprintf("%s (pid %d)", comp, before.PID))
	waitRestarted(ctx, e, comp, before, tl)
	Eventually(func(ctx context.Context) error {
		nodes, err := e.Kube[clusterName].CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nodes.Items {
			if r := nodeReadyOf(&n); r != corev1.ConditionTrue {
				return fmt.Errorf("node %s is %s", n.Name, r)
			}
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.Restart).WithPolling(e.Waits.Poll).Should(Succeed(),
		"cluster %s's API answering with every node Ready within %s of kill -9 of %s", clusterName, e.Waits.Restart, comp)
	recordTiming(exp, comp+" killed: API answering, nodes Ready", time.Since(killed))
	tl.Add(time.Now(), "nodes ready", clusterName)
	waitConfigValue(ctx, e, exp, start, "CHAOS", val, comp+" killed: push applied")
	expectLayoutConverged(ctx, e)
	recordTiming(exp, comp+" killed: converged", time.Since(killed))
	addRestarts(ctx, e, tl, start)
}

func nodeReadyOf(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// component reads one component of the twin's status by name.
func component(ctx context.Context, e *Env, name string) twin.ComponentStatus {
	st, err := e.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
		names = append(names, c.Name)
	}
	Fail(fmt.Sprintf("the twin has no component %q (it has %v)", name, names))
	return twin.ComponentStatus{}
}

// waitRestarted waits until the supervisor restarted name (one restart more than before, a new pid) and
// status sees it up.
func waitRestarted(ctx context.Context, e *Env, name string, before twin.ComponentStatus, tl *Timeline) {
	Eventually(func(ctx context.Context) error {
		c := component(ctx, e, name)
		if c.Restarts <= before.Restarts || c.PID == before.PID || !c.Up {
			return fmt.Errorf("%s: restarts %d (before %d), pid %d, up %v: %s", name, c.Restarts, before.Restarts, c.PID, c.Up, c.Detail)
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.Restart).WithPolling(e.Waits.Poll).Should(Succeed(),
		"%s restarted by the twin's supervisor within %s", name, e.Waits.Restart)
	tl.Add(time.Now(), "restarted", name)
}

// addRestarts puts the twin's restart events since start into the timeline.
func addRestarts(ctx context.Context, e *Env, tl *Timeline, start time.Time) {
	st, err := e.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, r := range st.Restarts {
		if r.At.Before(start) {
			continue
		}
		detail := fmt.Sprintf("%s: restart %d, new pid %d (it ended: %s)", r.Component, r.Restarts, r.PID, r.Exited)
		if r.Error != "" {
			detail += "; the restart failed: " + r.Error
		}
		tl.Add(r.At, "supervisor restart", detail)
	}
}

// pushOnce pushes dir as main once and returns the commit or the error.
func pushOnce(ctx context.Context, e *Env, dir, message string) (string, error) {
	res, err := e.Git.Push(ctx, gitPush(e, dir, message))
	if err != nil {
		return "", err
	}
	return res.Commit, nil
}

func gitPush(e *Env, dir, message string) gitserver.PushRequest {
	return gitserver.PushRequest{Repo: e.Repo, Branch: "main", Dir: dir, Message: message, From: "main"}
}

// pushUntilAccepted retries a push as a CI job's retry does, until Gitea takes it.
func pushUntilAccepted(ctx context.Context, e *Env, dir, message string) string {
	var commit string
	Eventually(func(ctx context.Context) error {
		c, err := pushOnce(ctx, e, dir, message)
		commit = c
		return err
	}).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(time.Second).Should(Succeed())
	return commit
}
