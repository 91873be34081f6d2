package scenarios

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// The file every environment's app layer shares (examples/repos/dir-per-env: apps/base); a key added to its
// ConfigMap reaches every cluster.
const (
	baseConfigMapFile = "apps/base/podinfo/configmap.yaml"
	baseConfigMapNS   = "apps"
	baseConfigMapName = "podinfo"
)

// The image update flow: the dev overlay sets podinfo's tag in its kustomize images list ("The CD
// pipeline bumps images[].newTag here", examples/repos/dir-per-env/gitops-config/apps/dev).
const (
	imageUpdateCluster = "dev"
	imageUpdateRepo    = "apps/podinfo"
	imageUpdateOverlay = "apps/dev/kustomization.yaml"
)

// flowSpecs: the CI/CD workflow of the Arc guidance (../shared/seeds/003_f1b5a216b380a00b.txt) against the
// twin's Gitea: a push reaching every cluster, a rollback by git revert, a promotion to prod by pull
// request with a required approval, and an image update (CI publishes a tag, the CD pipeline's pull
// request bumps the dev overlay). The promotion protects main, so the specs after it change main by
// pull request only.
func flowSpecs() {
	Describe("flow", Label("flow"), func() {
		It("applies a Git push on every cluster (push-to-applied)", func(ctx SpecContext) {
			exp := Experiment("flow: push to applied")
			val := fmt.Sprintf("release-%d", GinkgoRandomSeed())
			dir := env.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n")
			start := time.Now()
			commit := env.Push(ctx, "main", dir, "podinfo: release "+val)
			waitConfigValue(ctx, env, exp, start, "RELEASE", val, "push to applied")
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
			waitConfigValue(ctx, env, exp, time.Now(), "RELEASE", val, "")
			start := time.Now()
			revert := env.GitRevertHead(ctx, "main")
			waitConfigValue(ctx, env, exp, start, "RELEASE", before, "revert to applied")
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

		It("rolls a new image tag out to dev: publish, the CD pipeline's pull request bumps the overlay, approval, merge, new pods Ready", func(ctx SpecContext) {
			exp := Experiment("flow: image update")
			Expect(env.Kube).To(HaveKey(imageUpdateCluster), "the twin has no %s cluster", imageUpdateCluster)
			seed := GinkgoRandomSeed() % 100000
			tag := fmt.Sprintf("6.6.%d", seed)
			ref := env.Twin.RegistryHost() + "/" + imageUpdateRepo + ":" + tag
			start := time.Now()
			tl := NewTimeline(start)

			By("CI publishes " + ref)
			reg := registry.NewClient(env.Twin.RegistryHost())
			img, err := reg.Publish(ctx, imageUpdateRepo, tag)
			Expect(err).NotTo(HaveOccurred(), "publish %s", ref)
			tl.Add(time.Now(), "image published", img.Ref+" "+img.Digest)

			By("the CD pipeline opens a pull request bumping " + imageUpdateOverlay)
			pipeline, err := env.Git.CreateUser(ctx, fmt.Sprintf("cd-pipeline-%d", seed))
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Git.AssignPersona(ctx, env.Repo.Owner, pipeline, gitserver.ApplicationOperator)).To(Succeed())
			// A pipeline promotes only what the registry has.
			tags, err := reg.Tags(ctx, imageUpdateRepo)
			Expect(err).NotTo(HaveOccurred())
			Expect(tags).To(ContainElement(tag), "the registry does not list the tag CI just published")
			branch := "cd/podinfo-" + tag
			pr := cdPullRequest(ctx, env, pipeline, branch, imageUpdateOverlay, env.Twin.RegistryHost()+"/"+imageUpdateRepo, tag)
			tl.Add(time.Now(), "pull request opened", fmt.Sprintf("#%d %s -> main by %s", pr, branch, pipeline.Name))
			recordTiming(exp, "publish to pull request opened", time.Since(start))

			By("an application operator approves and merges")
			approver, err := env.Git.CreateUser(ctx, fmt.Sprintf("approver-%d", seed))
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Git.AssignPersona(ctx, env.Repo.Owner, approver, gitserver.ApplicationOperator)).To(Succeed())
			Expect(env.Git.As(approver).Approve(ctx, env.Repo, pr, "New podinfo build "+tag+" for dev")).To(Succeed())
			// Timed from the merge request: main moves inside the call, and a source poll may see it before
			// the call returns.
			merged := time.Now()
			merge, err := env.Git.As(approver).Merge(ctx, env.Repo, pr, gitserver.MergeOptions{DeleteBranch: true})
			Expect(err).NotTo(HaveOccurred(), "merge the pipeline's pull request #%d after the approval", pr)
			tl.Add(merged, "merge requested", fmt.Sprintf("%.12s by %s", merge, approver.Name))

			By("waiting for dev's podinfo pods to run " + ref)
			Eventually(func(ctx context.Context) (string, error) {
				d, err := env.Deployment(ctx, imageUpdateCluster, "apps", "podinfo")
				if err != nil {
					return "", err
				}
				return d.Spec.Template.Spec.Containers[0].Image, nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Equal(ref),
				"Deployment apps/podinfo on %s did not take the image of the merged pull request #%d (%.12s)", imageUpdateCluster, pr, merge)
			tl.Add(time.Now(), "applied", "Deployment apps/podinfo on "+imageUpdateCluster)
			recordTiming(exp, "merge to applied on "+imageUpdateCluster, time.Since(merged))
			var pods []string
			Eventually(func(ctx context.Context) error {
				pods, err = rolledOut(ctx, env.Kube[imageUpdateCluster], "apps", "podinfo", ref)
				return err
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed(),
				"cluster %s: the rollout of %s did not finish", imageUpdateCluster, ref)
			ready := time.Now()
			tl.Add(ready, "new pods Ready", strings.Join(pods, ", "))
			recordTiming(exp, "publish to new pods Ready", ready.Sub(start))
			recordTiming(exp, "merge to new pods Ready", ready.Sub(merged))
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			Note("%s published at 0 s; pipeline %s opened pull request #%d bumping images[].newTag of %s; %s (persona %s) approved and merged it (%.12s); "+
				"%d pod(s) of apps/podinfo on %s run the new image and are Ready after %.1f s. Main's branch policy, if an earlier spec set one, was met by the approval.",
				ref, pipeline.Name, pr, imageUpdateOverlay, approver.Name, gitserver.ApplicationOperator, merge, len(pods), imageUpdateCluster, ready.Sub(start).Seconds())
		})
	})
}

// waitConfigValue waits until the shared ConfigMap has key=val on every cluster of e (val "" means the key
// is absent) and records, per cluster, the time from start as measure (when measure is not empty).
func waitConfigValue(ctx context.Context, e *Env, exp *gmeasure.Experiment, start time.Time, key, val, measure string) {
	for _, c := range e.Twin.Spec().ClusterNames() {
		Eventually(func(ctx context.Context) error {
			cm, err := e.Kube[c].CoreV1().ConfigMaps(baseConfigMapNS).Get(ctx, baseConfigMapName, metav1.GetOptions{})
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
		}).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(e.Waits.Poll).Should(Succeed())
		if measure != "" {
			recordTiming(exp, strings.Join([]string{measure, c}, " on "), time.Since(start))
		}
	}
}

// cdPullRequest is the CD step of the pipeline persona: clone main with the git CLI, set newTag of the
// kustomize images entry named image in overlay (as `kustomize edit set image` does, keeping the file's
// comments), commit on branch, push it and open a pull request into main. It returns the pull request.
func cdPullRequest(ctx context.Context, e *Env, pipeline *gitserver.User, branch, overlay, image, tag string) int64 {
	dir := GinkgoT().TempDir()
	secret := pipeline.Token()
	runGit(ctx, dir, secret, "clone", "--quiet", "--branch", "main", e.authURL(e.Repo, pipeline.Name, secret), ".")
	runGit(ctx, dir, secret, "checkout", "--quiet", "-b", branch)
	path := filepath.Join(dir, filepath.FromSlash(overlay))
	doc, err := kyaml.ReadFile(path)
	Expect(err).NotTo(HaveOccurred(), "read %s from main", overlay)
	entry, err := doc.Pipe(kyaml.Lookup("images"), kyaml.MatchElement("name", image))
	Expect(err).NotTo(HaveOccurred(), "%s: images", overlay)
	Expect(entry).NotTo(BeNil(), "%s on main has no images entry named %s for the pipeline to bump", overlay, image)
	Expect(entry.PipeE(kyaml.SetField("newTag", kyaml.NewStringRNode(tag)))).To(Succeed())
	Expect(kyaml.WriteFile(doc, path)).To(Succeed())
	runGit(ctx, dir, secret, "commit", "--quiet", "-am", fmt.Sprintf("%s: %s:%s (CD)", overlay, image, tag))
	head := runGit(ctx, dir, secret, "rev-parse", "HEAD")
	runGit(ctx, dir, secret, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
	Expect(e.Git.WaitBranch(ctx, e.Repo, branch, head)).To(Succeed())
	pr, err := e.Git.As(pipeline).OpenPullRequest(ctx, e.Repo, gitserver.PullRequestOptions{Head: branch, Base: "main",
		Title: fmt.Sprintf("dev: %s %s", image, tag), Body: "Opened by the CD pipeline after CI published the image."})
	Expect(err).NotTo(HaveOccurred(), "the pipeline opens a pull request from %s", branch)
	return pr
}

// rolledOut fails until a Deployment's rollout of image is complete: the controller saw the newest
// generation, every replica is updated, ready and available, no old replica is left, and every pod of
// the Deployment that is not terminating runs image and is Ready. It returns those pods.
func rolledOut(ctx context.Context, kube kubernetes.Interface, ns, name, image string) ([]string, error) {
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
		return nil, fmt.Errorf("Deployment %s/%s: generation %d observed %d; replicas %d wanted, %d in total, %d updated, %d ready, %d available",
			ns, name, d.Generation, st.ObservedGeneration, want, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var pods, bad []string
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if got := p.Spec.Containers[0].Image; got != image || !ready {
			bad = append(bad, fmt.Sprintf("%s runs %s (Ready %v)", p.Name, got, ready))
			continue
		}
		pods = append(pods, p.Name)
	}
	if len(bad) > 0 || int32(len(pods)) != want {
		return nil, fmt.Errorf("Deployment %s/%s: %d pod(s) run %s and are Ready, want %d; not yet: %v", ns, name, len(pods), image, want, bad)
	}
	return pods, nil
}
