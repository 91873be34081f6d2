package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// Bad input is refused before any twin is dialled (exit 2); a state directory with no twin says so.
func TestClusterCommandInput(t *testing.T) {
	dir := t.TempDir()
	edgeFile := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(edgeFile, []byte("name: edge\nnodePools:\n- {name: linux, count: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown operation", []string{"cluster", "restart", "dev", "--state-dir", dir}, 2, `"restart" is not a cluster operation`},
		{"add without a file", []string{"cluster", "add", "--state-dir", dir}, 2, "-f: give the cluster file"},
		{"add a missing file", []string{"cluster", "add", "-f", filepath.Join(dir, "none.yaml"), "--state-dir", dir}, 2, "cannot read the cluster file"},
		{"add with no twin running", []string{"cluster", "add", "-f", edgeFile, "--state-dir", dir}, 1, "no twin running"},
		{"delete without a name", []string{"cluster", "delete", "--state-dir", dir}, 2, "give an operation and a cluster"},
		{"delete with too many", []string{"cluster", "delete", "dev", "prod", "--state-dir", dir}, 2, "takes one argument"},
		{"scale without a count", []string{"cluster", "scale", "dev", "linux", "--state-dir", dir}, 2, "takes three arguments"},
		{"scale to a word", []string{"cluster", "scale", "dev", "linux", "many", "--state-dir", dir}, 2, `COUNT "many"`},
		{"scale to a negative count", []string{"cluster", "scale", "--state-dir", dir, "--", "dev", "linux", "-1"}, 2, `COUNT "-1"`},
		{"bad output", []string{"cluster", "delete", "dev", "-o", "yaml", "--state-dir", dir}, 2, `-o "yaml"`},
		{"no twin running", []string{"cluster", "recreate", "dev", "--state-dir", dir}, 1, "no twin running"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runCapacityCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q does not say %q", stderr, c.stderr)
			}
		})
	}
}

// The text report lists the steps with their times and the model's verdict.
func TestPrintClusterReport(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &twin.ClusterReport{Op: twin.OpRecreateCluster, Cluster: "dev", Started: start, Took: 12340 * time.Millisecond,
		Steps: []twin.LifecycleStep{
			{Step: twin.StepPlaced, At: start, Detail: "dev-linux-0@br-hci-04"},
			{Step: twin.StepControlPlaneUp, At: start.Add(4200 * time.Millisecond), After: 4200 * time.Millisecond},
		},
		Capacity: "plan fits on 4 hosts with N-1 and a 15% reserve"}
	var b bytes.Buffer
	printClusterReport(&b, rep)
	for _, want := range []string{"recreate-cluster dev: done in 12.34s", "[   0.0s] VMs placed: dev-linux-0@br-hci-04",
		"[   4.2s] control plane up", "hardware: plan fits"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printClusterReport(&b, &twin.ClusterReport{Op: twin.OpScalePool, Cluster: "dev", Pool: "linux", From: 3, To: 3})
	if got := b.String(); !strings.Contains(got, "nothing to do") {
		t.Errorf("a no-op scale says %q", got)
	}
}

// runningTwin starts the twin of specFile in the test's temporary folder and serves its control socket,
// as `hybridtwin up` does; both stop when the test ends. It returns the twin and its state directory.
func runningTwin(t *testing.T, g *WithT, specFile string) (*twin.Twin, string) {
	t.Helper()
	spec, err := twin.LoadSpec(specFile)
	g.Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(t.TempDir(), "state")
	tw, err := twin.Up(context.Background(), spec, twin.Options{StateDir: stateDir})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = tw.Down(context.Background(), false) })
	srv, err := twin.ServeControl(tw)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return tw, stateDir
}

// cancelOn is a writer that cancels once its output contains a phrase: Ctrl-C at a known stage.
type cancelOn struct {
	buf    bytes.Buffer
	phrase string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.cancel != nil && strings.Contains(w.buf.String(), w.phrase) {
		w.cancel()
		w.cancel = nil
	}
	return len(p), nil
}

// TestClusterAddOnRunningTwin runs `hybridtwin cluster add` against a running twin (the converge twin:
// one cluster, dev, on the branch estate): bad cluster files are refused naming the file and field with
// nothing started; a pool the estate cannot hold is refused with the hardware model's reason; Ctrl-C
// after the nodes are Ready undoes the add; then the add goes through with progress on every long stage,
// its Nodes Ready and its own configuration Compliant, visible in `hybridtwin status`; and `cluster
// delete` takes it away again.
func TestClusterAddOnRunningTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	ctx := context.Background()
	tw, stateDir := runningTwin(t, g, filepath.Join(convergeData, "twin.yaml"))

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		g.Expect(os.WriteFile(p, []byte(body), 0o644)).To(Succeed())
		return p
	}
	status := func() *twin.Status {
		out, stderr, code := runCapacityCLI(t, "status", "--state-dir", stateDir, "-o", "json")
		g.Expect(code).To(Equal(0), stderr)
		var st twin.Status
		g.Expect(json.Unmarshal([]byte(out), &st)).To(Succeed())
		return &st
	}
	before := status().VMs
	vmsBefore := len(before)
	nothingStarted := func() {
		t.Helper()
		st := status()
		g.Expect(st.VMs).To(HaveLen(vmsBefore))
		g.Expect(clusterLeft(st, "edge")).To(BeFalse())
		g.Expect(processesUnder(filepath.Join(stateDir, "clusters", "edge"))).To(BeEmpty())
	}

	// Bad files: exit 2, the file, line and field named, nothing started.
	bad := []struct{ name, body, want string }{
		{"typo.yaml", "name: edge\nnodePool:\n- {name: linux, vmSize: Standard_K8S3_v1, count: 1}\n", `typo.yaml:2: nodePool`},
		{"taken.yaml", "name: dev\nnodePools:\n- {name: linux, vmSize: Standard_K8S3_v1, count: 1}\n", `taken.yaml:1: name: cluster "dev" already runs`},
		{"size.yaml", "name: edge\nnodePools:\n- {name: linux, vmSize: Standard_Huge, count: 1}\n", `size.yaml:3: nodePools[0].vmSize: "Standard_Huge" is not in the`},
		{"version.yaml", "name: edge\nkubernetesVersion: v1.29.0\nnodePools:\n- {name: linux, count: 1}\n", `version.yaml:2: kubernetesVersion: "v1.29.0": the twin's clusters run Kubernetes v1.33.13`},
		{"repo.yaml", "name: edge\nnodePools:\n- {name: linux, vmSize: Standard_K8S3_v1, count: 1}\ngitops:\n- name: edge-apps\n  repo: no-such-repo\n  ref: {branch: main}\n  kustomizations:\n    apps: {path: ./apps}\n",
			`repo.yaml:6: gitops[0].repo: "no-such-repo" is not a repository of spec.git.repos (have: gitops-config)`},
	}
	for _, b := range bad {
		_, stderr, code := runCapacityCLI(t, "cluster", "add", "-f", write(b.name, b.body), "--state-dir", stateDir)
		g.Expect(code).To(Equal(2), stderr)
		g.Expect(stderr).To(And(ContainSubstring(b.want), ContainSubstring("nothing was started")))
	}
	nothingStarted()

	// A pool the estate cannot hold: the planner's reason, exit 1, nothing changed.
	_, stderr, code := runCapacityCLI(t, "cluster", "add", "-f", write("big.yaml",
		"name: edge\ncontrolPlane: {count: 1, vmSize: Standard_A4_v2}\nnodePools:\n- {name: linux, vmSize: Standard_K8S3_v1, count: 200}\n"), "--state-dir", stateDir)
	g.Expect(code).To(Equal(1), stderr)
	g.Expect(stderr).To(And(ContainSubstring("add cluster edge: the hardware model says it does not fit:"), ContainSubstring("nothing was changed"),
		ContainSubstring("big.yaml:4: nodePools[0].count: 200")))
	t.Logf("oversize pool: %s", stderr)
	nothingStarted()

	// The cluster file's second configuration syncs an OCI artifact (sourceKind OCIRepository, ARM
	// api-version 2025-04-01), pushed to the twin's registry as `flux push artifact` does.
	img, err := fluxartifact.Build(map[string]string{
		"apps/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: edge-oci\n",
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edge-oci-settings\n  namespace: edge-oci\ndata:\n  mode: oci\n",
	}, fluxartifact.Meta{Source: "https://example.com/edge.git", Revision: "main@sha1:" + strings.Repeat("e", 40)})
	g.Expect(err).NotTo(HaveOccurred())
	pushed, err := registry.NewClient(tw.RegistryHost()).Push(ctx, img, "manifests/edge-oci", "1.0.0")
	g.Expect(err).NotTo(HaveOccurred())

	good := write("edge.yaml", `name: edge
kubernetesVersion: v1.33.13
controlPlane: {count: 1, vmSize: Standard_A4_v2}
nodePools:
- {name: linux, vmSize: Standard_K8S3_v1, count: 1}
gitops:
- name: edge-apps
  repo: gitops-config
  ref: {branch: main}
  syncIntervalInSeconds: 5
  kustomizations:
    infra: {path: ./infrastructure, prune: true}
    apps: {path: ./apps, prune: true, dependsOn: [infra]}
- name: edge-oci
  oci: {url: "oci://`+tw.RegistryHost()+`/manifests/edge-oci", insecure: true, tag: "1.0.0"}
  kustomizations:
    apps: {path: ./apps, prune: true}
`)

	// Ctrl-C once the nodes are Ready: the add is undone, and the command says so once it is.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	progress := &cancelOn{phrase: "nodes Ready", cancel: cancel}
	root := newRootCommand()
	root.SetOut(io.Discard)
	root.SetErr(progress)
	root.SetArgs([]string{"cluster", "add", "-f", good, "--state-dir", stateDir})
	err = root.ExecuteContext(cctx)
	g.Expect(err).To(HaveOccurred(), progress.buf.String())
	g.Expect(exitCode(err)).To(Equal(130), err.Error())
	g.Expect(err.Error()).To(ContainSubstring("undone: nothing of it runs"))
	g.Expect(progress.buf.String()).To(ContainSubstring("interrupted: the twin undoes"))
	t.Logf("Ctrl-C after the nodes were Ready:\n%s%v", progress.buf.String(), err)
	nothingStarted()

	// The add: progress on each long stage, then the report.
	out, stderr, code := runCapacityCLI(t, "cluster", "add", "-f", good, "--state-dir", stateDir)
	g.Expect(code).To(Equal(0), stderr)
	for _, stage := range []twin.LifecycleStepName{twin.StepPlaced, twin.StepControlPlaneUp, twin.StepNodesReady, twin.StepConnected, twin.StepConfigured, twin.StepCompliant} {
		g.Expect(stderr).To(ContainSubstring("] "+string(stage)), "progress lacks %q", stage)
	}
	g.Expect(out).To(And(ContainSubstring("add-cluster edge: done in"), ContainSubstring("hardware: ")))
	t.Logf("cluster add:\n%s%s", stderr, out)

	st := status()
	// The new VMs (control plane, the profile's load balancer, one worker) came in; no running VM moved.
	for _, v := range before {
		g.Expect(st.VMs).To(ContainElement(And(HaveField("Name", v.Name), HaveField("Host", v.Host))))
	}
	g.Expect(st.VMs).To(ContainElement(And(HaveField("Name", "edge-linux-0"), HaveField("Cluster", "edge"), HaveField("State", "Running"), HaveField("NodeReady", "True"))))
	var edge *twin.ClusterStatus
	for i := range st.Clusters {
		if st.Clusters[i].Name == "edge" {
			edge = &st.Clusters[i]
		}
	}
	g.Expect(edge).NotTo(BeNil())
	g.Expect(edge.Nodes).To(HaveLen(1))
	g.Expect(edge.Nodes[0].Ready).To(Equal("True"))
	g.Expect(st.GitOps).To(ContainElement(And(HaveField("Cluster", "edge"), HaveField("Name", "edge-apps"), HaveField("ComplianceState", "Compliant"))))
	g.Expect(st.GitOps).To(ContainElement(And(HaveField("Cluster", "edge"), HaveField("Name", "edge-oci"), HaveField("ComplianceState", "Compliant"),
		HaveField("SyncedCommit", "1.0.0@"+pushed.Digest))),
		"the cluster file's OCI configuration")
	text, _, code := runCapacityCLI(t, "status", "--state-dir", stateDir)
	g.Expect(code).To(Equal(0))
	g.Expect(text).To(MatchRegexp(`edge\s+edge-linux-0\s+True`))

	// Added once: a second add of the same file is refused by name.
	_, stderr, code = runCapacityCLI(t, "cluster", "add", "-f", good, "--state-dir", stateDir)
	g.Expect(code).To(Equal(2), stderr)
	g.Expect(stderr).To(ContainSubstring(`edge.yaml:1: name: cluster "edge" already runs`))

	out, stderr, code = runCapacityCLI(t, "cluster", "delete", "edge", "--state-dir", stateDir)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring("remove-cluster edge: done"))
	nothingStarted()
}

// A cluster file's problems that need no twin are all reported at once, each with its line and field,
// before any twin is dialled (exit 2).
func TestClusterFileProblems(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, body string }{
		{"every problem", "kubernetesVersion: [1, 20]\nnodePools: []\nsize: big\ngitops:\n- name: apps\n  clusters: [prod]\n"},
		{"reserved pool", "name: edge\nnodePools:\n- {name: control, count: 1}\n"},
		{"another cluster", "name: edge\nnodePools: [{name: linux, count: 1}]\ngitops:\n- name: apps\n  clusters: [prod]\n"},
		{"negative count", "name: edge\nnodePools:\n- {name: linux, count: -2}\n"},
		{"two documents", "name: a\nnodePools: [{name: linux, count: 1}]\n---\nname: b\n"},
		{"a list", "- name: edge\n"},
	}
	want := map[string][]string{
		"every problem": {"every problem.yaml:3: size: unknown field", "every problem.yaml:1: kubernetesVersion:",
			"every problem.yaml: name: is required", "every problem.yaml:2: nodePools: list at least one node pool"},
		"another cluster": {`another cluster.yaml:5: gitops[0].clusters[0]: "prod": a cluster file's configurations target only its own cluster "edge"`},
		"reserved pool":   {`reserved pool.yaml:3: nodePools[0].name: "control" is reserved`},
		"negative count":  {"negative count.yaml:3: nodePools[0].count: must be the number of worker nodes, got -2"},
		"two documents":   {"holds 2 YAML documents"},
		"a list":          {"a list.yaml:1: document 1 is"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, c.name+".yaml")
			if err := os.WriteFile(f, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runCapacityCLI(t, "cluster", "add", "-f", f, "--state-dir", dir)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr: %s)", code, stderr)
			}
			for _, w := range want[c.name] {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "no twin running") {
				t.Errorf("a bad file was sent to a twin:\n%s", stderr)
			}
		})
	}
}
