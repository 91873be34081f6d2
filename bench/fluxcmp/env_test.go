package fluxcmp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// shardKey is Flux's sharding label (--watch-label-selector): every engine of the bench runs against the
// same cluster at once, each taking only the objects labelled with its shard, so the idle ones cost
// nothing while another is measured and no object is reconciled twice.
const shardKey = "sharding.fluxcd.io/key"

// engine is one engine under test: the twin's reconciler, or a pair of Flux controllers.
type engine struct {
	name string // hybridtwin, flux, flux-matched: the figures' names
	// settings says how it runs, in every result note.
	settings string
	target   *shardTarget
	// pids are the processes whose CPU and peak RSS are its figures.
	pids func() []int
	logs string
}

// env is one twin cluster (the embedded provider: etcd, kube-apiserver, controller-manager and
// scheduler from the tool cache, one simulated node) with Flux's CRDs, a Git server, an OCI registry, and
// three engines against it: ours as `hybridtwin up` runs it (objects and status in the cluster), Flux at
// its defaults, and Flux at our settings.
type env struct {
	cfg     *rest.Config
	kube    kubernetes.Interface
	git     *testenv.GitServer
	reg     *registry.Registry
	engines []*engine
}

// newEnv starts the cluster, the services and the engines; everything stops when the benchmark ends.
func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := context.Background()
	prov := embedded.New(embedded.Options{Dir: b.TempDir()})
	b.Cleanup(func() { _ = prov.Close(context.Background()) })
	// One node, as small as the fast profile allows: Deployments need a controller-manager to become
	// Ready (wait: true); with replicas 0 (the benchmark's patch) no pod is ever scheduled.
	info, err := prov.Create(ctx, cluster.Spec{Name: "bench", TimeProfile: cluster.ProfileFast,
		Nodes: []cluster.NodeSpec{{Name: "bench-node", Pool: "np1", Host: "hci-1", Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192}}})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	// The bench's own requests (applies, status polls) must not be throttled by client-go's defaults
	// (QPS 5), which would make the driver, not the engines, the bottleneck at 1000.
	cfg.QPS, cfg.Burst = 200, 400
	if _, err := fluxcrd.Install(ctx, cfg, nil, nil); err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Start(ctx, registry.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = reg.Stop(context.Background()) })
	e := &env{cfg: cfg, kube: kubernetes.NewForConfigOrDie(cfg), git: testenv.Git(b, "flux", "pw-"+randHex(8)), reg: reg}

	prof := reconciler.DefaultProfile()
	ours, err := reconciler.New(cfg, reconciler.Options{Cluster: "bench", WorkDir: b.TempDir(), ObjectsInCluster: true,
		WatchLabelSelector: shardKey + "=hybridtwin"})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	if err := ours.Start(rctx); err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { ours.Stop(); cancel() })
	self := os.Getpid()
	e.engines = append(e.engines, &engine{name: "hybridtwin", target: e.shard("hybridtwin"), pids: func() []int { return []int{self} },
		settings: fmt.Sprintf("hybridtwin: the twin's reconciler in this process, profile %s: %d Kustomization workers, %d source workers, %d status workers, GOGC %d (reconciler.SetProcessGC), objects and status in the cluster",
			prof.Name, prof.KustomizationWorkers, prof.SourceWorkers, prof.StatusWorkers, prof.GCPercent)})
	kubeconfig := info.Kubeconfig
	for _, f := range []struct {
		name        string
		concurrency int
		env         []string
		settings    string
	}{
		{"flux", 0, nil, fmt.Sprintf("flux: source-controller and kustomize-controller at Flux's defaults (kustomize-controller --concurrent=%d, GOGC 100)", flux.KustomizeConcurrency)},
		{"flux-matched", prof.KustomizationWorkers, []string{fmt.Sprintf("GOGC=%d", prof.GCPercent)},
			fmt.Sprintf("flux-matched: the same controllers at the twin's settings (kustomize-controller --concurrent=%d, GOGC=%d)", prof.KustomizationWorkers, prof.GCPercent)},
	} {
		// helm-controller stays off: the bench compares Kustomizations, and every controller's CPU and memory
		// counts as Flux's.
		ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: kubeconfig, StateDir: b.TempDir(), Concurrency: f.concurrency, Env: f.env,
			WatchLabelSelector: shardKey + "=" + f.name, NoHelmController: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ctl.Stop() })
		var logs []string
		for _, p := range ctl.Processes() {
			logs = append(logs, p.Log)
		}
		e.engines = append(e.engines, &engine{name: f.name, target: e.shard(f.name), settings: f.settings, logs: strings.Join(logs, ", "),
			pids: func() []int {
				var pids []int
				for _, p := range ctl.Processes() {
					pids = append(pids, p.PID)
				}
				return pids
			}})
	}
	return e
}

func (e *env) engine(name string) *engine {
	for _, en := range e.engines {
		if en.name == name {
			return en
		}
	}
	panic("no engine " + name)
}

// shard is a target that labels what it applies for one engine's shard.
func (e *env) shard(name string) *shardTarget {
	t, err := arcagent.NewClusterTarget(e.cfg)
	if err != nil {
		panic(err)
	}
	return &shardTarget{ClusterTarget: t, shard: name}
}

// shardTarget applies Flux objects through the Arc agent's cluster target (server-side apply, as the
// agent does), labelled for one engine's shard.
type shardTarget struct {
	*arcagent.ClusterTarget
	shard string
}

func (t *shardTarget) label(m *metav1.ObjectMeta) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[shardKey] = t.shard
}

func (t *shardTarget) ApplyGitRepository(o *sourcev1.GitRepository) error {
	t.label(&o.ObjectMeta)
	return t.ClusterTarget.ApplyGitRepository(o)
}

func (t *shardTarget) ApplyOCIRepository(o *sourcev1.OCIRepository) error {
	t.label(&o.ObjectMeta)
	return t.ClusterTarget.ApplyOCIRepository(o)
}

func (t *shardTarget) ApplyKustomization(o *kustomizev1.Kustomization) error {
	t.label(&o.ObjectMeta)
	return t.ClusterTarget.ApplyKustomization(o)
}

// newNamespace makes a namespace for one run with the Git credentials and the service account the
// Kustomizations impersonate (bound to the built-in admin role there, as a tenant's would be).
func newNamespace(b *testing.B, kube kubernetes.Interface, prefix string, g *testenv.GitServer) string {
	b.Helper()
	ns := prefix + "-" + randHex(3)
	ctx := context.Background()
	steps := []func() error{
		func() error {
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns},
				StringData: map[string]string{"username": g.Username, "password": g.Password}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: benchSA, Namespace: ns}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: benchSA, Namespace: ns},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: benchSA, Namespace: ns}}}, metav1.CreateOptions{})
			return err
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			b.Fatal(err)
		}
	}
	return ns
}

// benchSA is the service account the benchmark-shape Kustomizations apply as (flux-benchmark's
// serviceAccountName).
const benchSA = "bench"

// dropNamespace deletes a run's namespace and waits until it is gone: its Kustomizations go through
// their engine's finalizer (pruning what they applied), so the next run starts on an idle cluster.
func dropNamespace(kube kubernetes.Interface, ns string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still there after %s: %w", ns, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// apiRequests is the API server's apiserver_request_total summed over every label (its /metrics), so a
// run's delta is the requests made during it: mostly the engine measured, plus the driver's applies and
// status polls (the same for every engine) and the cluster's own controllers.
func (e *env) apiRequests(ctx context.Context) (float64, error) {
	data, err := e.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("apiserver_request_total: %q: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}

// pushApp pushes the benchmark shape's app (appFiles of flux-benchmark's podinfo manifests: a
// Deployment, a Service and a HorizontalPodAutoscaler, written for this bench) to the registry as a Flux
// OCI artifact and returns its oci:// URL.
func (e *env) pushApp(b *testing.B) string {
	b.Helper()
	img, err := fluxartifact.Build(benchApp, fluxartifact.Meta{Source: "bench/fluxcmp"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.reg.Client().Push(context.Background(), img, "bench/app", "latest"); err != nil {
		b.Fatal(err)
	}
	return "oci://" + e.reg.Host() + "/bench/app"
}

// benchApp is a small web app in the shape flux-benchmark deploys (podinfo's kustomize manifests:
// Deployment, Service, HPA), written for this bench.
var benchApp = map[string]string{
	"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- service.yaml\n- hpa.yaml\n",
	"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/bench/web:1.0.0
        ports:
        - {name: http, containerPort: 8080}
        env:
        - {name: WEB_PORT, value: "8080"}
        resources:
          requests: {cpu: 10m, memory: 32Mi}
          limits: {memory: 64Mi}
`,
	"service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
`,
	"hpa.yaml": `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 90}
`,
}
