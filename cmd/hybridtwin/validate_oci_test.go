package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// ociExample is the example spec whose configurations sync an OCI artifact of spec.artifacts.
const ociExample = "../../examples/twins/oci-source.yaml"

// ociSpec writes a copy of the OCI example into a temporary folder, its relative paths made absolute and
// every oci line passed through edit, and returns its path.
func ociSpec(t *testing.T, edit func(ociLine string) string) string {
	t.Helper()
	data, err := os.ReadFile(ociExample)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "../", examples+"/")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "oci: ") {
			l = edit(l)
		}
		lines = append(lines, l)
	}
	p := filepath.Join(t.TempDir(), "twin.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func validateJSON(t *testing.T, g *WithT, path string, f validateFlags) (*layout.Report, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	f.output, f.failOn = "json", "error"
	err := runValidate(context.Background(), &out, &errb, path, f)
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	var rep layout.Report
	if code != 2 {
		g.Expect(json.Unmarshal(out.Bytes(), &rep)).To(Succeed(), errb.String()+errString(err))
	}
	return &rep, code, errb.String() + errString(err)
}

// `hybridtwin validate -f <spec>` on a spec whose configurations sync a tag of spec.artifacts validates the
// artifact's folder; an oci url has no local folder, and PATH stands in for it; --converge refuses an oci
// source it cannot put the layout under, by the configuration's name, before starting anything.
func TestValidateOCISpec(t *testing.T) {
	g := NewWithT(t)
	rep, code, log := validateJSON(t, g, "", validateFlags{files: []string{ociExample}})
	g.Expect(code).To(Equal(0), log)
	g.Expect(rep.Findings).To(BeEmpty())
	g.Expect(rep.Configs).To(HaveLen(2))
	g.Expect(rep.Objects).To(BeNumerically(">", 0))

	url := ociSpec(t, func(l string) string {
		return strings.Replace(l, "{repository: manifests/gitops-config,", `{url: "oci://registry.example/manifests/gitops-config",`, 1)
	})
	_, code, log = validateJSON(t, g, "", validateFlags{files: []string{url}})
	g.Expect(code).To(Equal(2))
	g.Expect(log).To(And(ContainSubstring("spec.gitops[0] (platform-dev): the OCI artifact oci://registry.example/manifests/gitops-config:1.0.0 has no local folder"),
		ContainSubstring("pass the artifact's folder as PATH")))

	layoutDir := filepath.Join("..", "..", "examples", "repos", "dir-per-env", "gitops-config")
	rep, code, log = validateJSON(t, g, layoutDir, validateFlags{files: []string{url}})
	g.Expect(code).To(Equal(0), log)
	g.Expect(rep.Configs).To(HaveLen(2))

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, code, log = validateJSON(t, g, layoutDir, validateFlags{files: []string{url}, converge: true})
	g.Expect(code).To(Equal(2), log)
	g.Expect(log).To(And(ContainSubstring("spec.gitops[0] (platform-dev) syncs the OCI artifact oci://registry.example/manifests/gitops-config:1.0.0"),
		ContainSubstring("--converge packs the layout as a tag of spec.artifacts")))
	g.Expect(log).NotTo(ContainSubstring("converge: starting twin"))
	g.Expect(os.ReadDir(tmp)).To(BeEmpty(), "nothing was to be started")

	semver := ociSpec(t, func(l string) string { return strings.Replace(l, `tag: "1.0.0"`, `semver: ">=1.0.0"`, 1) })
	_, code, log = validateJSON(t, g, layoutDir, validateFlags{files: []string{semver}, converge: true})
	g.Expect(code).To(Equal(2), log)
	g.Expect(log).To(ContainSubstring("spec.gitops[0] (platform-dev) syncs the OCI artifact manifests/gitops-config (semver >=1.0.0)"))
}

// TestValidateConvergeOCIOnRunningTwin starts the OCI example twin in this process (its configurations
// syncing every 5 s) and runs `validate --converge --state-dir` on it: the layout is packed as a Flux
// artifact and pushed under the spec.artifacts tag the configurations sync, and both converge at the new
// digest (tag@digest in Azure).
func TestValidateConvergeOCIOnRunningTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	ctx := context.Background()
	// A 5 s sync: a registry sends no push webhook, so the OCIRepository notices a new digest at its next
	// sync (the Arc default, 600 s, would make the wait that long).
	spec := ociSpec(t, func(l string) string {
		return l + "\n    syncIntervalInSeconds: 5"
	})
	tw, stateDir := runningTwin(t, g, spec)
	compliant := func() []string {
		st, err := tw.Status(ctx)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, c := range st.GitOps {
			out = append(out, c.Name+" "+c.ComplianceState+" "+c.SyncedCommit)
		}
		return out
	}
	before, err := registry.NewClient(tw.RegistryHost()).Manifest(ctx, "manifests/gitops-config", "1.0.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(compliant).WithTimeout(5 * time.Minute).WithPolling(250 * time.Millisecond).Should(ConsistOf(
		"platform-dev Compliant 1.0.0@"+before.Digest, "apps-dev Compliant 1.0.0@"+before.Digest))

	layoutDir := filepath.Join("..", "..", "examples", "repos", "dir-per-env", "gitops-config")
	rep, code, log := validateJSON(t, g, layoutDir, validateFlags{converge: true, stateDir: stateDir})
	g.Expect(code).To(Equal(0), log)
	g.Expect(rep.Findings).To(BeEmpty(), log)
	g.Expect(rep.Converge).NotTo(BeNil())
	g.Expect(rep.Converge.Mode).To(Equal("running"))
	g.Expect(rep.Converge.Pushed).To(HaveLen(1))
	pushed := rep.Converge.Pushed[0]
	g.Expect(pushed.Repo).To(Equal("oci://" + tw.RegistryHost() + "/manifests/gitops-config"))
	g.Expect(pushed.Branch).To(Equal("1.0.0"))
	g.Expect(pushed.Commit).To(HavePrefix("sha256:"))
	g.Expect(pushed.Commit).NotTo(Equal(before.Digest), "the layout is a new artifact (its source annotation names the layout)")
	g.Expect(log).To(ContainSubstring("converge: pushed the layout to " + tw.RegistryHost() + "/manifests/gitops-config:1.0.0"))
	g.Expect(rep.Converge.Kustomizations).To(HaveLen(2))
	for _, k := range rep.Converge.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady), "%+v", k)
	}
	g.Expect(compliant()).To(ConsistOf("platform-dev Compliant 1.0.0@"+pushed.Commit, "apps-dev Compliant 1.0.0@"+pushed.Commit))
}

// TestValidateConvergeOCINewTwin runs `validate PATH -f <OCI example> --converge`: the twin starts with the
// layout packed as the spec.artifacts tag its configurations sync, both converge at that artifact's
// digest, and the twin is taken down with nothing left.
func TestValidateConvergeOCINewTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	layoutDir := filepath.Join("..", "..", "examples", "repos", "dir-per-env", "gitops-config")
	rep, code, log := validateJSON(t, g, layoutDir, validateFlags{files: []string{ociExample}, converge: true})
	g.Expect(code).To(Equal(0), log)
	g.Expect(rep.Findings).To(BeEmpty(), log)
	g.Expect(rep.Converge).NotTo(BeNil())
	g.Expect(rep.Converge.Mode).To(Equal("up"))
	g.Expect(rep.Converge.Pushed).To(HaveLen(1))
	g.Expect(rep.Converge.Pushed[0].Repo).To(And(HavePrefix("oci://127.0.0.1:"), HaveSuffix("/manifests/gitops-config")))
	g.Expect(rep.Converge.Pushed[0].Branch).To(Equal("1.0.0"))
	g.Expect(rep.Converge.Pushed[0].Commit).To(HavePrefix("sha256:"))
	g.Expect(rep.Converge.Kustomizations).To(HaveLen(2))
	for _, k := range rep.Converge.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady), "%+v", k)
	}
	g.Expect(log).To(ContainSubstring("converge: twin stopped"))
	g.Expect(processesUnder(tmp)).To(BeEmpty())
	g.Expect(os.ReadDir(tmp)).To(BeEmpty(), "the converge state was left in %s", tmp)
}
