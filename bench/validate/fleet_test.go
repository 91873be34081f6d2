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

// Shape of the generated home-lab fleet: flux bootstrap's flux-system, a cluster-apps Kustomization,
// and fleetNamespaces folders of fleetAppsPerNS apps, each a ks.yaml without metadata.namespace (the
// namespace folder's kustomization.yaml sets it) depending on the previous app of its namespace, with
// postBuild variables and three objects: 2 + 10 x 10 = 102 Kustomizations, the size of the large
// home-lab repositories of issue #19.
const (
	fleetNamespaces = 10
	fleetAppsPerNS  = 10
)

func generateFleet(b *testing.B, root string) {
	b.Helper()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("kubernetes/flux/flux-system/gotk-sync.yaml", `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 1m, url: https://git.example.com/home/fleet, ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 10m, path: ./kubernetes/flux, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
`)
	write("kubernetes/flux/flux-system/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gotk-sync.yaml]\n")
	write("kubernetes/flux/apps.yaml", `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: cluster-apps, namespace: flux-system}
spec: {interval: 30m, path: ./kubernetes/apps, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
`)
	write(".github/workflows/ci.yaml", "on: push\njobs: {t: {runs-on: ubuntu-latest, steps: [{run: \"echo ${{ github.sha }}\"}]}}\n")
	for n := 0; n < fleetNamespaces; n++ {
		ns := fmt.Sprintf("ns-%02d", n)
		res := []string{"./namespace.yaml"}
		for a := 0; a < fleetAppsPerNS; a++ {
			app := fmt.Sprintf("app-%02d-%02d", n, a)
			res = append(res, "./"+app+"/ks.yaml")
			dep := ""
			if a > 0 {
				dep = fmt.Sprintf("  dependsOn:\n    - name: app-%02d-%02d\n", n, a-1)
			}
			write(fmt.Sprintf("kubernetes/apps/%s/%s/ks.yaml", ns, app), fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: &app %[1]s
spec:
%[3]s  commonMetadata:
    labels: {app.kubernetes.io/name: *app}
  interval: 1h
  path: ./kubernetes/apps/%[2]s/%[1]s/app
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
  targetNamespace: %[2]s
  postBuild:
    substitute: {APP: *app}
`, app, ns, dep))
			write(fmt.Sprintf("kubernetes/apps/%s/%s/app/kustomization.yaml", ns, app),
				"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [./resources.yaml]\n")
			write(fmt.Sprintf("kubernetes/apps/%s/%s/app/resources.yaml", ns, app), fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: app, image: "ghcr.io/example/${APP}:1.0", envFrom: [{configMapRef: {name: %[1]s}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec: {selector: {app: %[1]s}, ports: [{port: 80}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s}
data: {LOG_LEVEL: "${LOG_LEVEL:=info}"}
`, app))
		}
		write(fmt.Sprintf("kubernetes/apps/%s/namespace.yaml", ns), fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns))
		write(fmt.Sprintf("kubernetes/apps/%s/kustomization.yaml", ns), fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - %s\n", ns, strings.Join(res, "\n  - ")))
	}
}

// BenchmarkFleet100Offline validates the generated 102-Kustomization home-lab fleet as `hybridtwin
// validate --offline` does: entry points discovered, the graph walked, every rule but --schema.
// Issue #19 asks for under 5 s; the figure is the seconds/op metric.
func BenchmarkFleet100Offline(b *testing.B) {
	root := b.TempDir()
	generateFleet(b, root)
	ctx := context.Background()
	want := 2 + fleetNamespaces*fleetAppsPerNS
	var samples []float64
	for b.Loop() {
		start := time.Now()
		cs, err := layout.Discover(root)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := layout.Validate(ctx, cs, layout.Options{Offline: true})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start).Seconds()
		samples = append(samples, took)
		b.ReportMetric(took, "seconds/validate")
		ks := 0
		for _, c := range rep.Configs {
			ks += len(c.Kustomizations)
		}
		if ks != want || len(rep.Findings) != 0 {
			b.Fatalf("kustomizations %d (want %d), findings %+v", ks, want, rep.Findings)
		}
	}
	m := result.NewMetric("validate.fleet100.offline.seconds", "s", result.Lower, samples)
	m.Goal = &result.Goal{Op: "<", Value: 5, Source: "issue 19: a 100-Kustomization repository validated statically with --offline in under 5 s"}
	record(b, fmt.Sprintf("generated home-lab fleet: %d Kustomizations (app per namespace), --offline, every rule but --schema", want), m)
}
