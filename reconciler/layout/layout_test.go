package layout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/admission"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"sigs.k8s.io/yaml"
)

// load reads a testdata case: fluxconfigs.yaml when present, else the Flux Kustomizations it declares.
func load(t *testing.T, dir string) []layout.Config {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "fluxconfigs.yaml")); err == nil {
		cs, err := layout.LoadFluxConfigs(filepath.Join(dir, "fluxconfigs.yaml"), dir)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs, err := layout.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func validate(t *testing.T, dir string, opts layout.Options) *layout.Report {
	t.Helper()
	rep, err := layout.Validate(context.Background(), load(t, dir), opts)
	if err != nil {
		t.Fatalf("validate %s: %v", dir, err)
	}
	return rep
}

func of(rep *layout.Report, rule layout.RuleID) []layout.Finding {
	var out []layout.Finding
	for _, f := range rep.Findings {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// TestRules runs each rule on its minimal failing repository (testdata/<case>/fail) and its passing one
// (testdata/<case>/pass).
func TestRules(t *testing.T) {
	cases := []struct {
		dir      string
		rule     layout.RuleID
		severity layout.Severity
		opts     layout.Options
		// want are substrings of the failing findings' messages; file:line is where the first points.
		want []string
		file string
		line int
		// pass, when set, adjusts the passing repository's configurations (e.g. points it at a server
		// the test runs).
		pass func(t *testing.T, cs []layout.Config)
	}{
		{dir: "build", rule: layout.RuleBuild, severity: layout.Error, want: []string{"missing.yaml"}, file: "clusters/test/app.yaml", line: 4},
		{dir: "variables", rule: layout.RuleMissingVariable, severity: layout.Error, want: []string{"without a value: REGION"}, file: "app/cm.yaml", line: 4},
		{dir: "dependson", rule: layout.RuleDependsOn, severity: layout.Error, want: []string{"dependsOn flux-system/infrastructure: no such Kustomization", "flux-system/infra"}, file: "clusters/test/apps.yaml", line: 4},
		{dir: "cycle", rule: layout.RuleCycle, severity: layout.Error, want: []string{"dependsOn cycle: a -> b -> c -> a"}, file: "clusters/test/a.yaml", line: 4},
		{dir: "namespace", rule: layout.RuleNamespaceScope, severity: layout.Error, want: []string{"cluster-scoped ClusterRole", `namespace "billing"`}, file: "apps/other.yaml", line: 4},
		{dir: "secret", rule: layout.RulePlainSecret, severity: layout.Error, want: []string{"plain text"}, file: "app/secret.yaml", line: 4},
		{dir: "registry", rule: layout.RuleRegistry, severity: layout.Error, opts: layout.Options{AllowedRegistries: []string{"registry.twin.local"}},
			want: []string{`spec.template.spec.containers[0].image: image "nginx:1.25" comes from registry "docker.io"`}, file: "app/deploy.yaml", line: 4},
		{dir: "apiversion", rule: layout.RuleDeprecatedAPI, severity: layout.Error, want: []string{"batch/v1beta1 CronJob was removed in Kubernetes v1.25 (target v1.33)"}, file: "app/cronjob.yaml", line: 4},
		{dir: "duplicate", rule: layout.RuleDuplicate, severity: layout.Error, want: []string{"declared by 2 Kustomizations", "shared/cm.yaml"}, file: "shared/cm.yaml", line: 4},
		{dir: "helmrelease", rule: layout.RuleHelmRender, severity: layout.Error, want: []string{"chart hello-0.1.0 does not render", "values: image.repository is required"}, file: "app/release.yaml", line: 4},
		{dir: "admission", rule: layout.RuleAdmission, severity: layout.Error, opts: layout.Options{Policies: examplePolicies(t)},
			want: []string{`Deny: deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'allowed-registries' with binding 'allowed-registries' denied request: images from a registry other than registry.twin.local: nginx:1.25`,
				"ValidatingAdmissionPolicy 'require-memory-limits' with binding 'require-memory-limits' denied request: containers without resources.limits.memory: web"},
			file: "app/deploy.yaml", line: 4},
		{dir: "helmsource", rule: layout.RuleHelmSource, severity: layout.Warning, want: []string{"chart not rendered", "http://127.0.0.1:1/charts"}, file: "app/release.yaml", line: 13,
			pass: func(t *testing.T, cs []layout.Config) {
				substitute(cs, "CHART_REPO", serveHelmRepo(t, filepath.Join("testdata", "helmrelease", "pass", "charts", "hello")))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			rep := validate(t, filepath.Join("testdata", tc.dir, "fail"), tc.opts)
			got := of(rep, tc.rule)
			if len(got) == 0 {
				t.Fatalf("fail/: no %s finding; findings: %+v", tc.rule, rep.Findings)
			}
			all := ""
			for _, f := range got {
				all += f.Message + "\n"
				if f.Severity != tc.severity || f.Hint == "" || f.Object == "" {
					t.Errorf("finding %+v: want severity %s, a hint and an object", f, tc.severity)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("fail/: %s messages lack %q:\n%s", tc.rule, w, all)
				}
			}
			if got[0].File != tc.file || got[0].Line != tc.line {
				t.Errorf("fail/: first finding at %s:%d, want %s:%d", got[0].File, got[0].Line, tc.file, tc.line)
			}
			wantExit := layout.ExitFindings
			if tc.severity != layout.Error {
				wantExit = layout.ExitClean
			}
			if c := rep.ExitCode(layout.Error); c != wantExit {
				t.Errorf("fail/: exit code %d, want %d", c, wantExit)
			}
			if c := rep.ExitCode(layout.Info); c != layout.ExitFindings {
				t.Errorf("fail/: --fail-on info: exit code %d, want 1", c)
			}

			passCfg := load(t, filepath.Join("testdata", tc.dir, "pass"))
			if tc.pass != nil {
				tc.pass(t, passCfg)
			}
			rep, err := layout.Validate(context.Background(), passCfg, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 0 {
				t.Errorf("pass/: findings %+v", rep.Findings)
			}
			if c := rep.ExitCode(layout.Info); c != layout.ExitClean {
				t.Errorf("pass/: exit code %d", c)
			}
		})
	}
}

func TestVariablesOnlyListMissing(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "variables", "fail"), layout.Options{})
	for _, f := range of(rep, layout.RuleMissingVariable) {
		if strings.Contains(f.Message, "TIER") || strings.Contains(f.Message, "ENV,") {
			t.Errorf("defaulted or set variable reported: %s", f.Message)
		}
	}
}

func TestDeprecatedWarnsBeforeRemoval(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "apiversion", "fail"), layout.Options{TargetVersion: "v1.24"})
	got := of(rep, layout.RuleDeprecatedAPI)
	if len(got) != 1 || got[0].Severity != layout.Warning || !strings.Contains(got[0].Message, "deprecated since Kubernetes v1.21 and is removed in v1.25") {
		t.Fatalf("target v1.24: want one deprecation warning, got %+v", got)
	}
	if rep.ExitCode(layout.Error) != layout.ExitClean || rep.ExitCode(layout.Warning) != layout.ExitFindings {
		t.Errorf("warning must fail only --fail-on warning")
	}
	if _, err := layout.Validate(context.Background(), load(t, filepath.Join("testdata", "apiversion", "pass")), layout.Options{TargetVersion: "2.0"}); err == nil {
		t.Error("target version 2.0 accepted")
	}
}

func TestInputErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := layout.Discover(dir); err == nil || !strings.Contains(err.Error(), "declares no Flux Kustomization") {
		t.Errorf("empty repo: %v", err)
	}
	bad := filepath.Join(dir, "fc.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nproperties:\n  scope: tenant\n  kustomizations: {a: {path: ./}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := layout.LoadFluxConfigs(bad, dir); err == nil || !strings.Contains(err.Error(), `properties.scope "tenant"`) {
		t.Errorf("bad scope: %v", err)
	}
	if err := os.WriteFile(bad, []byte("name: x\nproperties:\n  kustomizationz: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := layout.LoadFluxConfigs(bad, dir); err == nil || !strings.Contains(err.Error(), "kustomizationz") {
		t.Errorf("unknown field: %v", err)
	}
}

// repoLayout is the part of examples/repos/*/layout.yaml the test needs (gitserver.LoadLayout reads
// the whole; reconciler/ may not import twin/).
type repoLayout struct {
	Repositories []struct {
		Name     string `json:"name"`
		Branches []struct {
			Name string `json:"name"`
			Path string `json:"path"`
		} `json:"branches"`
	} `json:"repositories"`
	Configurations []struct {
		Environment    string `json:"environment"`
		Name           string `json:"name"`
		Scope          string `json:"scope"`
		Namespace      string `json:"namespace"`
		Repository     string `json:"repository"`
		Branch         string `json:"branch"`
		Kustomizations []struct {
			Name string `json:"name"`
			Path string `json:"path"`
		} `json:"kustomizations"`
	} `json:"configurations"`
}

func exampleConfigs(t *testing.T, dir string) []layout.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "layout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var l repoLayout
	if err := yaml.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	var out []layout.Config
	for _, c := range l.Configurations {
		root := ""
		for _, r := range l.Repositories {
			for _, b := range r.Branches {
				if r.Name == c.Repository && b.Name == c.Branch {
					root = filepath.Join(dir, b.Path)
				}
			}
		}
		if root == "" {
			t.Fatalf("%s: configuration %s/%s: no folder for %s@%s", dir, c.Environment, c.Name, c.Repository, c.Branch)
		}
		var ks []layout.ArcKustomization
		for _, k := range c.Kustomizations {
			ks = append(ks, layout.ArcKustomization{Name: k.Name, Path: k.Path})
		}
		ns := c.Namespace
		if ns == "" {
			ns = "flux-system"
		}
		out = append(out, layout.FromArc(c.Environment, c.Name, layout.Scope(c.Scope), ns, root, "layout.yaml", ks))
	}
	return out
}

// TestExamplesValidateClean: the three layouts of examples/repos validate without any finding, with
// the registry allow-list set to their placeholder registry.
func TestExamplesValidateClean(t *testing.T) {
	for _, name := range []string{"branch-per-env", "dir-per-env", "multi-repo"} {
		t.Run(name, func(t *testing.T) {
			cs := exampleConfigs(t, filepath.Join("..", "..", "examples", "repos", name))
			rep, err := layout.Validate(context.Background(), cs, layout.Options{AllowedRegistries: []string{"registry.twin.local"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 0 || rep.Objects == 0 || len(rep.Configs) != 6 {
				var b bytes.Buffer
				_ = rep.Write(&b, layout.FormatText, layout.Error)
				t.Fatalf("want clean with objects, got:\n%s", b.String())
			}
		})
	}
}

// TestFluxExampleLayout: the structure of the Flux kustomize+helm example (clusters/<env> holding Flux
// Kustomizations for infrastructure/controllers, infrastructure/configs and apps with dependsOn),
// written here from scratch, is discovered and validates clean apart from the HelmRelease info.
func TestFluxExampleLayout(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "flux-example"), layout.Options{Offline: true})
	if len(rep.Configs) != 2 {
		t.Fatalf("want clusters production and staging, got %+v", rep.Configs)
	}
	// Its charts come from public Helm repositories: offline, each HelmRelease is a HT012 warning.
	for _, f := range rep.Findings {
		if f.Rule != layout.RuleHelmSource || f.Severity != layout.Warning || !strings.Contains(f.Message, "offline") {
			t.Errorf("unexpected finding %+v", f)
		}
	}
	if len(rep.Findings) != 4 {
		t.Errorf("want 4 HT012 warnings (2 HelmReleases x 2 clusters), got %d", len(rep.Findings))
	}
	if rep.ExitCode(layout.Error) != layout.ExitClean {
		t.Error("exit code")
	}
}

// sarifRequired checks the SARIF 2.1.0 structure code-scanning consumers require
// (docs.oasis-open.org/sarif/sarif/v2.1.0: sarifLog.version and $schema, run.tool.driver.name,
// reportingDescriptor.id, result.ruleId/level/message.text, physicalLocation.artifactLocation.uri,
// region.startLine >= 1).
func sarifRequired(t *testing.T, doc []byte, wantResults int) {
	t.Helper()
	var log map[string]any
	if err := json.Unmarshal(doc, &log); err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	if log["version"] != "2.1.0" || !strings.Contains(log["$schema"].(string), "sarif-schema-2.1.0") {
		t.Fatalf("version/$schema: %v %v", log["version"], log["$schema"])
	}
	runs, _ := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("runs: %v", runs)
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] == "" {
		t.Error("tool.driver.name empty")
	}
	ruleIDs := map[string]bool{}
	for _, r := range driver["rules"].([]any) {
		id, _ := r.(map[string]any)["id"].(string)
		if id == "" {
			t.Error("rule without id")
		}
		ruleIDs[id] = true
	}
	results := run["results"].([]any)
	if len(results) != wantResults {
		t.Fatalf("results: %d, want %d", len(results), wantResults)
	}
	for _, x := range results {
		r := x.(map[string]any)
		if !ruleIDs[r["ruleId"].(string)] {
			t.Errorf("ruleId %v not in rules", r["ruleId"])
		}
		switch r["level"] {
		case "error", "warning", "note", "none":
		default:
			t.Errorf("level %v", r["level"])
		}
		if r["message"].(map[string]any)["text"] == "" {
			t.Error("empty message.text")
		}
		locs := r["locations"].([]any)
		if len(locs) == 0 {
			t.Fatal("no locations")
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		if pl["artifactLocation"].(map[string]any)["uri"] == "" {
			t.Error("empty uri")
		}
		if pl["region"].(map[string]any)["startLine"].(float64) < 1 {
			t.Error("startLine < 1")
		}
	}
}

func TestOutputs(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "namespace", "fail"), layout.Options{})
	var b bytes.Buffer
	if err := rep.Write(&b, layout.FormatSARIF, layout.Error); err != nil {
		t.Fatal(err)
	}
	sarifRequired(t, b.Bytes(), len(rep.Findings))

	b.Reset()
	if err := rep.Write(&b, layout.FormatJUnit, layout.Error); err != nil {
		t.Fatal(err)
	}
	var ju struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name     string    `xml:"name,attr"`
				Skipped  *struct{} `xml:"skipped"`
				Failures []struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &ju); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b.String())
	}
	if len(ju.Suites) != 1 || ju.Suites[0].Name != "test/apps" || ju.Suites[0].Tests != len(layout.Rules) || ju.Suites[0].Failures != 1 {
		t.Fatalf("JUnit suites: %+v", ju.Suites)
	}
	failed, skipped := 0, map[string]bool{}
	for _, c := range ju.Suites[0].Cases {
		failed += len(c.Failures)
		if c.Skipped != nil {
			skipped[c.Name] = true
		}
	}
	// The optional stages that did not run are skipped test cases, not passes.
	if ju.Suites[0].Skipped != 3 || !skipped["HT009 schema"] || !skipped["HT013 converge"] || !skipped["HT016 admission-policy"] {
		t.Errorf("JUnit skipped: %d %v, want HT009, HT013 and HT016", ju.Suites[0].Skipped, skipped)
	}
	if failed != len(rep.Findings) {
		t.Errorf("JUnit failures %d, findings %d", failed, len(rep.Findings))
	}

	b.Reset()
	if err := rep.Write(&b, layout.FormatJSON, layout.Error); err != nil {
		t.Fatal(err)
	}
	var back layout.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Findings) != len(rep.Findings) {
		t.Fatalf("JSON round trip: %v", err)
	}
	b.Reset()
	if err := rep.Write(&b, layout.FormatText, layout.Error); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "apps/other.yaml:4: ERROR HT005") || !strings.Contains(b.String(), "fix: ") {
		t.Errorf("text:\n%s", b.String())
	}
	if err := rep.Write(&b, "yaml", layout.Error); err == nil {
		t.Error("unknown format accepted")
	}
}

// examplePolicies are the example ValidatingAdmissionPolicies (examples/policies).
func examplePolicies(t *testing.T) *admission.Set {
	t.Helper()
	set, err := admission.Load(filepath.Join("..", "..", "examples", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return set
}
