package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// The file every environment's app layer shares (examples/repos/dir-per-env: apps/base); a key added to its
// ConfigMap reaches every cluster.
const (
	baseConfigMapFile = "apps/base/podinfo/configmap.yaml"
	baseConfigMapNS   = "apps"
	baseConfigMapName = "podinfo"
)

// flowSpecs: the CI/CD workflow of the Arc guidance (../shared/seeds/003_f1b5a216b380a00b.txt) against the
// twin's Gitea: a push reaching every cluster, a rollback by git revert, and a promotion to prod by pull
// request with a required approval. The promotion protects main, so it runs last.
func flowSpecs() {
	Describe("flow", Label("flow"), func() {
		It("applies a Git push on every cluster (push-to-applied)", func(ctx SpecContext) {
			exp := Experiment("flow: push to applied")
			val := fmt.Sprintf("release-%d", GinkgoRandomSeed())
			dir := env.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n")
			start := time.Now()
			commit := env.Push(ctx, "main", dir, "podinfo: release "+val)
			waitConfigValue(ctx, exp, start, "RELEASE", val, "push to applied")
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			Note("Commit %.12s (a key in %s) applied on %v; the source is polled every %d s (see the profile), so push-to-applied is at most that plus build and apply.",
				commit, baseConfigMapFile, env.Twin.Spec().ClusterNames(), SourceIntervalSeconds)
		})

		It("rolls a change back with git revert", func(ctx SpecContext) {
			exp := Experiment("flow: rollback by revert")
			val := fmt.Sprintf("bad-%d", GinkgoRandomSeed())
			// The revert restores what main held before the bad commit, which an earlier spec may have
			// changed: remember the live value (the working copy below is the seed, not main's head).
			cm, err := env.Kube[env.Twin.Spec().ClusterNames()[0]].CoreV1().ConfigMaps(baseConfigMapNS).Get(ctx, baseConfigMapName, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			before := cm.Data["RELEASE"]
			dir := env.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n")
			env.Push(ctx, "main", dir, "podinfo: a release that has to go")
			waitConfigValue(ctx, exp, time.Now(), "RELEASE", val, "")
			start := time.Now()
			revert := env.GitRevertHead(ctx, "main")
			waitConfigValue(ctx, exp, start, "RELEASE", before, "revert to applied")
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			Note("`git revert --no-edit HEAD` (commit %.12s, pushed with the git CLI) put RELEASE back to %q on every cluster.", revert, before)
		})

		It("promotes dev's image to prod by pull request, which needs an approval", func(ctx SpecContext) {
			exp := Experiment("flow: promotion by pull request")
			prodCluster := "prod"
			Expect(env.Kube).To(HaveKey(prodCluster), "the twin has no prod cluster")
			dep, err := env.Deployment(ctx, prodCluster, "apps", "podinfo")
			Expect(err).NotTo(HaveOccurred())
			Expect(dep.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":6.5.0"), "prod runs podinfo 6.5.0 before the promotion (apps/prod)")

			Expect(env.Git.ProtectBranch(ctx, env.Repo, "main", gitserver.Protection{RequiredApprovals: 1})).To(Succeed())
			branch := fmt.Sprintf("promote-podinfo-%d", GinkgoRandomSeed())
			dir := env.WorkingCopy()
			replaceIn(dir, "apps/prod/kustomization.yaml", "newTag: \"6.5.0\"", "newTag: \"6.5.1\"")
			env.Push(ctx, branch, dir, "prod: podinfo 6.5.1, as running on dev")
			pr, err := env.Git.OpenPullRequest(ctx, env.Repo, gitserver.PullRequestOptions{Head: branch, Base: "main",
				Title: "Promote podinfo 6.5.1 to prod", Body: "Running on dev since the last release."})
			Expect(err).NotTo(HaveOccurred())
			_, err = env.Git.Merge(ctx, env.Repo, pr, gitserver.MergeOptions{})
			Expect(errors.Is(err, gitserver.ErrForbidden)).To(BeTrue(), "merging without the required approval must be refused, got %v", err)

			reviewer, err := env.Git.CreateUser(ctx, fmt.Sprintf("reviewer-%d", GinkgoRandomSeed()%100000))
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Git.AssignPersona(ctx, env.Repo.Owner, reviewer, gitserver.Maintainers([]gitserver.Layer{gitserver.AppLayer})[0])).To(Succeed())
			Expect(env.Git.As(reviewer).Approve(ctx, env.Repo, pr, "LGTM: soaked on dev")).To(Succeed())
			start := time.Now()
			merge, err := env.Git.Merge(ctx, env.Repo, pr, gitserver.MergeOptions{})
			Expect(err).NotTo(HaveOccurred(), "merge after the approval")
			Eventually(func(ctx context.Context) (string, error) {
				d, err := env.Deployment(ctx, prodCluster, "apps", "podinfo")
				if err != nil {
					return "", err
				}
				return d.Spec.Template.Spec.Containers[0].Image, nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(HaveSuffix(":6.5.1"),
				"prod's podinfo did not move to 6.5.1 after the promotion was merged (%.12s)", merge)
			recordTiming(exp, "merge to applied on prod", time.Since(start))
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			Note("main protected with one required approval: the merge was refused without it, accepted after %s (persona %s) approved; prod runs podinfo 6.5.1 (merge %.12s).",
				reviewer.Name, gitserver.Maintainers([]gitserver.Layer{gitserver.AppLayer})[0], merge)
		})
	})
}

// waitConfigValue waits until the shared ConfigMap has key=val on every cluster (val "" means the key is
// absent) and records, per cluster, the time from start as measure (when measure is not empty).
func waitConfigValue(ctx context.Context, exp *gmeasure.Experiment, start time.Time, key, val, measure string) {
	for _, c := range env.Twin.Spec().ClusterNames() {
		Eventually(func(ctx context.Context) error {
			cm, err := env.Kube[c].CoreV1().ConfigMaps(baseConfigMapNS).Get(ctx, baseConfigMapName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			got, ok := cm.Data[key]
			switch {
			case val == "" && ok:
				return fmt.Errorf("cluster %s: ConfigMap %s/%s still has %s=%q", c, baseConfigMapNS, baseConfigMapName, key, got)
			case val != "" && got != val:
				return fmt.Errorf("cluster %s: ConfigMap %s/%s has %s=%q, want %q (not applied yet)", c, baseConfigMapNS, baseConfigMapName, key, got, val)
			}
			return nil
		}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
		if measure != "" {
			recordTiming(exp, strings.Join([]string{measure, c}, " on "), time.Since(start))
		}
	}
}
