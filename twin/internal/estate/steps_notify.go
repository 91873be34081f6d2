package estate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// spec.notifications: Flux's notification-controller as a per-cluster add-on of the engine step, for
// both engines. It starts before the engine, so the engine gets its event endpoint (engine.Cluster
// EventsURL: Flux's controllers as --events-addr, the twin's reconciler posts to it); the engine then gets
// no push hooks of the twin's own. Once the engine runs, every seeded repository that a Git-sourced
// configuration of the cluster reads gets, in flux-system:
//   - a Receiver gitea-<repo> (type github: Gitea's "gitea" webhooks carry GitHub's X-GitHub-Event and
//     X-Hub-Signature-256 headers, which notification-controller's github receiver verifies) listing the
//     configurations' GitRepositories, and a Gitea push webhook to its status.webhookPath, signed with the
//     token of its Secret: a push annotates the GitRepositories with reconcile.fluxcd.io/requestedAt;
//   - a Provider gitea-<repo> (type gitea, the repository's URL, the notifier user's token) and an Alert
//     gitea-<repo> for the configurations' Kustomizations (selected by the Arc agent's
//     clusterconfig.azure.com/name label): each reconcile sets a commit status on the commit it applied.
// Alerts to a team's chat are the platform team's own Provider and Alert objects, as in a real cluster.

// notifierUser is the Gitea user whose token the gitea Providers post commit statuses with: a bot account
// with write access to the seeded repositories (Gitea lets writers set commit statuses).
const notifierUser = "flux-notifier"

// notifyPoll is how often the receiver wiring asks for a Receiver's webhook path: the quarter second the
// Arc agent polls status with (twin/arcagent DefaultPollInterval).
const notifyPoll = 250 * time.Millisecond

// Notification objects' API versions as notification-controller v1.9.3 serves them (config/crd/bases):
// Receiver v1, Provider and Alert v1beta3.
var (
	receiverGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1", Resource: "receivers"}
	providerGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "providers"}
	alertGVR    = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "alerts"}
	secretGVR   = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// ensureNotifier creates the notifier user and gives it write access to every seeded repository, once.
func (e *Estate) ensureNotifier(ctx context.Context) error {
	if !e.spec.Spec.Notifications.Enabled || e.notifier != nil {
		return nil
	}
	u, err := e.git.Admin().CreateUser(ctx, notifierUser)
	if err != nil {
		return err
	}
	for _, r := range e.gitRepos {
		if err := e.git.Admin().AddCollaborator(ctx, r, u.Name, gitserver.WriteAccess); err != nil {
			return err
		}
	}
	e.notifier = u
	return nil
}

// startNotification starts the cluster's notification-controller and registers its stop.
func (e *Estate) startNotification(ctx context.Context, b *bringing, dir string) (*flux.Notification, error) {
	n, err := flux.StartNotification(ctx, flux.NotificationOptions{Kubeconfig: b.rc.info.Kubeconfig,
		StateDir: filepath.Join(dir, "notification-controller"),
		Logger:   e.log.With("component", "notification-controller", "cluster", b.name),
		Restart:  e.backoff, OnRestart: func(r procgroup.Restart) { r.Name = b.name + "/flux " + r.Name; e.recordRestart(r) }})
	if err != nil {
		return nil, err
	}
	e.addCleanup(cleanup{name: "notification-controller " + b.name, cluster: b.name, stage: api.StepAgentStopped,
		fn: func(context.Context) error { return n.Stop() }})
	e.progress("notifications %s: notification-controller pid %d, events %s, receivers %s", b.name, n.Process().PID, n.EventsURL(), n.ReceiverURL())
	return n, nil
}

// wireNotifications creates the cluster's Receivers, Providers and Alerts and the Gitea push webhooks to
// the Receivers (removed again with the cluster).
func (e *Estate) wireNotifications(ctx context.Context, b *bringing, n *flux.Notification) error {
	dyn, err := dynamic.NewForConfig(b.rc.config)
	if err != nil {
		return err
	}
	byRepo := map[string][]spec.GitOpsConfig{}
	for i, g := range slices.Concat(e.spec.Spec.GitOps, b.gitops) {
		ours := i >= len(e.spec.Spec.GitOps) || g.Targets(b.name) // a cluster file's configurations are its own
		if ours && g.OCI == nil && g.Bucket == nil && g.Repo != "" {
			byRepo[g.Repo] = append(byRepo[g.Repo], g)
		}
	}
	ns := flux.RuntimeNamespace
	for _, repo := range e.gitRepos {
		cfgs := byRepo[repo.Name]
		if len(cfgs) == 0 {
			continue
		}
		token, err := randomHex()
		if err != nil {
			return err
		}
		name := "gitea-" + repo.Name
		var gitRepos, kustomizations []any
		for _, g := range cfgs {
			gitRepos = append(gitRepos, map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
				"name": g.Name, "namespace": g.Namespace})
			kustomizations = append(kustomizations, map[string]any{"kind": "Kustomization", "name": "*", "namespace": g.Namespace,
				"matchLabels": map[string]any{arcagent.LabelConfiguration: g.Name}})
		}
		objs := []struct {
			gvr schema.GroupVersionResource
			obj map[string]any
		}{
			{secretGVR, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": objMeta(name+"-webhook", ns),
				"stringData": map[string]any{"token": token}}},
			{receiverGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver", "metadata": objMeta(name, ns),
				"spec": map[string]any{"type": "github", "events": []any{"push"}, "secretRef": map[string]any{"name": name + "-webhook"},
					"resources": gitRepos}}},
			{secretGVR, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": objMeta(name+"-token", ns),
				"stringData": map[string]any{"token": e.notifier.Token()}}},
			{providerGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider", "metadata": objMeta(name, ns),
				"spec": map[string]any{"type": "gitea", "address": strings.TrimSuffix(e.repoURLs[repo.Name], ".git"),
					"secretRef": map[string]any{"name": name + "-token"}}}},
			{alertGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert", "metadata": objMeta(name, ns),
				"spec": map[string]any{"providerRef": map[string]any{"name": name}, "eventSeverity": "info", "eventSources": kustomizations}}},
		}
		for _, o := range objs {
			u := &unstructured.Unstructured{Object: o.obj}
			if _, err := dyn.Resource(o.gvr).Namespace(ns).Apply(ctx, u.GetName(), u,
				metav1.ApplyOptions{FieldManager: fluxcrd.FieldManager, Force: true}); err != nil {
				return fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), ns, u.GetName(), err)
			}
		}
		path, err := webhookPath(ctx, dyn, ns, name)
		if err != nil {
			return err
		}
		url := n.ReceiverURL() + path
		id, err := e.git.Admin().CreateWebhook(ctx, repo, gitserver.Webhook{URL: url, Secret: token, Events: []string{"push"}})
		if err != nil {
			return fmt.Errorf("push webhook of %s to Receiver %s/%s: %w", repo, ns, name, err)
		}
		admin := e.git.Admin()
		e.addCleanup(cleanup{name: "push webhook " + repo.String() + " -> " + b.name, cluster: b.name, stage: api.StepAgentStopped, removeOnly: true,
			fn: func(ctx context.Context) error { return admin.DeleteWebhook(ctx, repo, id) }})
		e.progress("notifications %s: Receiver %s/%s <- push webhook of %s; Provider gitea -> commit statuses of %d configuration(s)",
			b.name, ns, name, repo, len(cfgs))
	}
	return nil
}

// webhookPath waits until notification-controller has made the Receiver Ready and returns its
// status.webhookPath (/hook/<sha256 of token, name and namespace>).
func webhookPath(ctx context.Context, dyn dynamic.Interface, ns, name string) (string, error) {
	t := time.NewTicker(notifyPoll)
	defer t.Stop()
	last := "not reconciled yet"
	for {
		r, err := dyn.Resource(receiverGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			path, _, _ := unstructured.NestedString(r.Object, "status", "webhookPath")
			conds, _, _ := unstructured.NestedSlice(r.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Ready" {
					if m["status"] == "True" && path != "" {
						return path, nil
					}
					last = fmt.Sprintf("Ready=%v %v: %v", m["status"], m["reason"], m["message"])
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for Receiver %s/%s to be Ready (%s): %w", ns, name, last, ctx.Err())
		case <-t.C:
		}
	}
}

func objMeta(name, ns string) map[string]any {
	return map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app.kubernetes.io/managed-by": "hybridtwin"}}
}

// randomHex is a fresh random token (the Receiver's webhook secret).
func randomHex() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errors.Join(errors.New("webhook token"), err)
	}
	return hex.EncodeToString(b), nil
}
