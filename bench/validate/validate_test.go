package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// Shape of the generated repository: 20 Kustomizations (one per team app, the last ten depending on the
// first ten) of 25 apps x 4 objects (Deployment, Service, ConfigMap, HPA) = 2,000 objects, the size.
const (
	kustomizations = 20
	appsPerKs      = 25
	objectsPerApp  = 4
	// kubeconformPace is kubeconform's published figure: 50,714 resources in 6.7 s
	// (yannh/kubeconform README, "Speed comparison"), in objects per second.
	kubeconformPace = 50714 / 6.7
)

func generate(b *testing.B, root string) {
	b.Helper()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for k := 0; k < kustomizations; k++ {
		dep := ""
		if k >= kustomizations/2 {
			dep = fmt.Sprintf("  dependsOn: [{name: team-%02d}]\n", k-kustomizations/2)
		}
		write(filepath.Join(root, "clusters", "bench", fmt.Sprintf("team-%02d.yaml", k)), fmt.Sprintf(`apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: team-%02d, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./teams/team-%02d
%s  postBuild:
    substitute: {ENV: bench}
`, k, k, dep))
		var res []string
		for a := 0; a < appsPerKs; a++ {
			name := fmt.Sprintf("app-%02d-%02d", k, a)
			res = append(res, name+".yaml")
			write(filepath.Join(root, "teams", fmt.Sprintf("team-%02d", k), name+".yaml"), fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: team-%02[2]d}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
        - name: app
          image: registry.twin.local/apps/%[1]s:1.0
          envFrom: [{configMapRef: {name: %[1]s}}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: team-%02[2]d}
spec:
  selector: {app: %[1]s}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s, namespace: team-%02[2]d}
data: {ENVIRONMENT: "${ENV}", LOG_LEVEL: "${LOG_LEVEL:=info}"}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: %[1]s, namespace: team-%02[2]d}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: %[1]s}
  minReplicas: 1
  maxReplicas: 3
`, name, k))
		}
		write(filepath.Join(root, "teams", fmt.Sprintf("team-%02d", k), "kustomization.yaml"),
			"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "+strings.Join(res, "\n  - ")+"\n")
	}
}

// BenchmarkStatic2000 validates the 2,000-object repository (every rule but the API-server schema check)
// and records the result (record).
func BenchmarkStatic2000(b *testing.B) {
	root := b.TempDir()
	generate(b, root)
	opts := layout.Options{AllowedRegistries: []string{"registry.twin.local"}}
	var samples []float64
	ctx := context.Background()
	for b.Loop() {
		start := time.Now()
		cs, err := layout.Discover(root)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := layout.Validate(ctx, cs, opts)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start).Seconds())
		if rep.Objects != kustomizations*appsPerKs*objectsPerApp || len(rep.Findings) != 0 {
			b.Fatalf("objects %d, findings %+v", rep.Objects, rep.Findings)
		}
	}
	objects := float64(kustomizations * appsPerKs * objectsPerApp)
	var pace []float64
	for _, s := range samples {
		pace = append(pace, objects/s)
	}
	m := result.NewMetric("validate.static.objects_per_second", "objects/s", result.Higher, pace)
	m.Anchor = &result.Anchor{Value: kubeconformPace, Source: "kubeconform README: 50,714 resources in 6.7 s (schema validation only, no kustomize build)"}
	record(b, fmt.Sprintf("generated repo: %d Kustomizations with postBuild, %d objects; static rules HT001-HT008, HT010, HT011 (no --schema)", kustomizations, int(objects)),
		result.NewMetric("validate.static.2000objects.seconds", "s", result.Lower, samples), m)
}

// recorded is the driver's one result file: every benchmark of the package run in one `go test -bench`
// adds its metrics to it (record).
var recorded *result.Run

// record adds metrics (and a note on the input) to the driver's result and writes it to
// $HYBRIDTWIN_BENCH_OUT if set, else to validate.json in the run directory of $HYBRIDTWIN_BENCH_DIR if
// set (result.OutPath); with neither it writes nothing, so a quick local `go test -bench` leaves the
// committed bench/results/validate.json alone.
func record(b *testing.B, note string, metrics ...result.Metric) {
	out := os.Getenv("HYBRIDTWIN_BENCH_OUT")
	if out == "" && os.Getenv(result.EnvDir) != "" {
		var err error
		if out, err = result.OutPath("validate.json"); err != nil {
			b.Fatal(err)
		}
	}
	if out == "" {
		return
	}
	if recorded == nil {
		recorded = &result.Run{Schema: result.Schema, RunAt: time.Now().UTC(), Env: result.CurrentEnvironment()}
	}
	recorded.Env.Notes = append(recorded.Env.Notes, note)
	for _, m := range metrics {
		recorded.Add(m)
	}
	if err := recorded.Write(out); err != nil {
		b.Fatal(err)
	}
}
