package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/support"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/e2e"
)

// TestE2EFrameworkDrivesATwinCluster runs a twin cluster's whole life through e2e-framework: envfuncs
// creates it with the twin's provider, a feature uses klient to deploy and wait, node operations cut a
// VM-node off and bring it back, and envfuncs destroys it.
func TestE2EFrameworkDrivesATwinCluster(t *testing.T) {
	p, _ := sharedClusters(t) // the shared provider; this test makes its own small cluster with it
	name := "e2e-" + randomSuffix()
	spec := smallSpec(name)
	spec.Nodes = append(spec.Nodes, cluster.NodeSpec{Name: "moc-" + name + "-2", Pool: "np1", Host: "hci-2", Size: "Standard_A2_v2", CPU: 2, MemoryMiB: 4096})

	cfg := envconf.New()
	ctx, err := envfuncs.CreateClusterWithOpts(e2e.New(p, spec), name, e2e.WithWaitDuration(settle))(context.Background(), cfg)
	if err != nil {
		t.Fatalf("envfuncs.CreateCluster: %v", err)
	}
	defer func() {
		if _, err := envfuncs.DestroyCluster(name)(ctx, cfg); err != nil {
			t.Errorf("envfuncs.DestroyCluster: %v", err)
		}
		if list, _ := p.List(context.Background()); containsCluster(list, name) {
			t.Errorf("cluster %s still listed after DestroyCluster", name)
		}
	}()
	testenv, err := env.NewWithContext(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	deploy := features.New("klient against a twin cluster").
		Assess("nodes are the spec's VMs", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			var nodes corev1.NodeList
			if err := cfg.Client().Resources().List(ctx, &nodes); err != nil {
				t.Fatal(err)
			}
			if len(nodes.Items) != len(spec.Nodes) {
				t.Fatalf("%d nodes, want %d", len(nodes.Items), len(spec.Nodes))
			}
			return ctx
		}).
		Assess("a deployment becomes available", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			r := cfg.Client().Resources()
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + randomSuffix()}}
			if err := r.Create(ctx, ns); err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{"app": "hello"}
			dep := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: ns.Name},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
					},
				},
			}
			if err := r.Create(ctx, dep); err != nil {
				t.Fatal(err)
			}
			if err := wait.For(conditions.New(r).DeploymentConditionMatch(dep, appsv1.DeploymentAvailable, corev1.ConditionTrue),
				wait.WithTimeout(settle), wait.WithInterval(poll)); err != nil {
				t.Fatalf("deployment not available: %v", err)
			}
			if err := wait.For(conditions.New(r).ResourceScaled(dep, func(o k8s.Object) int32 {
				return o.(*appsv1.Deployment).Status.ReadyReplicas
			}, 2), wait.WithTimeout(settle), wait.WithInterval(poll)); err != nil {
				t.Fatalf("deployment not scaled to 2 ready replicas: %v", err)
			}
			return ctx
		}).
		Assess("a VM-node is cut off and restored through node operations", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			victim := &support.Node{Name: spec.Nodes[1].Name, Cluster: name}
			if _, err := envfuncs.PerformNodeOperation(name, support.StopNode, victim)(ctx, cfg); err != nil {
				t.Fatalf("StopNode: %v", err)
			}
			kp := e2eProvider(ctx, t, name)
			if err := wait.For(nodeStateIs(ctx, kp, victim.Name, "Unknown"), wait.WithTimeout(eviction), wait.WithInterval(poll)); err != nil {
				t.Fatalf("node %s never went Unknown: %v", victim.Name, err)
			}
			if _, err := envfuncs.PerformNodeOperation(name, support.StartNode, victim)(ctx, cfg); err != nil {
				t.Fatalf("StartNode: %v", err)
			}
			if err := wait.For(nodeStateIs(ctx, kp, victim.Name, "Ready"), wait.WithTimeout(settle), wait.WithInterval(poll)); err != nil {
				t.Fatalf("node %s never came back Ready: %v", victim.Name, err)
			}
			if err := kp.AddNode(ctx, &support.Node{Name: "extra"}); err == nil {
				t.Fatal("AddNode was accepted; the twin's nodes come from the hardware model")
			}
			return ctx
		}).Feature()

	testenv.Test(t, deploy)

	// ExportLogs copies the component logs.
	dest := t.TempDir()
	if _, err := envfuncs.ExportClusterLogs(name, dest)(ctx, cfg); err != nil {
		t.Fatalf("ExportClusterLogs: %v", err)
	}
	for _, c := range cluster.Components() {
		if _, err := exportedLog(dest, c); err != nil {
			t.Errorf("exported logs lack %s: %v", c, err)
		}
	}
}

// e2eProvider is the cluster envfuncs.CreateCluster stored in the context, with its node operations.
func e2eProvider(ctx context.Context, t *testing.T, name string) support.E2EClusterProviderWithLifeCycle {
	t.Helper()
	p, ok := envfuncs.GetClusterFromContext(ctx, name)
	if !ok {
		t.Fatalf("cluster %s is not in the context", name)
	}
	lp, ok := p.(support.E2EClusterProviderWithLifeCycle)
	if !ok {
		t.Fatalf("%T has no node operations", p)
	}
	return lp
}

// nodeStateIs is a wait condition on ListNode's state for one node.
func nodeStateIs(ctx context.Context, p support.E2EClusterProviderWithLifeCycle, node, state string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		nodes, err := p.ListNode(ctx)
		if err != nil {
			return false, nil
		}
		for _, n := range nodes {
			if n.Name == node {
				return n.State == state, nil
			}
		}
		return false, nil
	}
}

func exportedLog(dest string, c cluster.Component) (os.FileInfo, error) {
	return os.Stat(filepath.Join(dest, string(c)+".log"))
}

func containsCluster(list []cluster.Info, name string) bool {
	for _, in := range list {
		if in.Name == name {
			return true
		}
	}
	return false
}
