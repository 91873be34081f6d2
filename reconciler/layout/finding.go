package layout

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Severity orders findings; --fail-on picks the lowest that fails a run.
type Severity string

// Severities, lowest first.
const (
	Info    Severity = "info"
	Warning Severity = "warning"
	Error   Severity = "error"
)

func (s Severity) rank() int {
	switch s {
	case Info:
		return 0
	case Warning:
		return 1
	case Error:
		return 2
	}
	return -1
}

// AtLeast reports whether s is as severe as min.
func (s Severity) AtLeast(min Severity) bool { return s.rank() >= min.rank() }

// ParseSeverity reads "info", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(s))
	if v.rank() < 0 {
		return "", fmt.Errorf("%w: severity %q: use info, warning or error", ErrInput, s)
	}
	return v, nil
}

// RuleID names a rule.
type RuleID string

// The rules.
const (
	RuleBuild           RuleID = "HT001"
	RuleMissingVariable RuleID = "HT002"
	RuleDependsOn       RuleID = "HT003"
	RuleCycle           RuleID = "HT004"
	RuleNamespaceScope  RuleID = "HT005"
	RulePlainSecret     RuleID = "HT006"
	RuleRegistry        RuleID = "HT007"
	RuleDeprecatedAPI   RuleID = "HT008"
	RuleSchema          RuleID = "HT009"
	RuleDuplicate       RuleID = "HT010"
	RuleHelmRender      RuleID = "HT011"
	RuleHelmSource      RuleID = "HT012"
	RuleConverge        RuleID = "HT013"
	RuleSource          RuleID = "HT014"
	RuleNamespaceSet    RuleID = "HT015"
	RuleAdmission       RuleID = "HT016"
)

// Rule describes one rule, for SARIF's rules table and JUnit's test cases.
type Rule struct {
	ID          RuleID
	Name        string
	Description string
	Default     Severity
}

// Rules is every rule, in id order.
var Rules = []Rule{
	{RuleBuild, "kustomize-build", "Every Kustomization path builds with Flux's generator and the kustomize API.", Error},
	{RuleMissingVariable, "postbuild-variables", "Every postBuild ${VAR} without a default has a value.", Error},
	{RuleDependsOn, "dependson-exists", "Every dependsOn names a Kustomization of the same cluster.", Error},
	{RuleCycle, "dependson-acyclic", "The dependsOn graph has no cycle.", Error},
	{RuleNamespaceScope, "namespace-scope", "A namespace-scoped configuration holds only objects of its namespace.", Error},
	{RulePlainSecret, "no-plaintext-secret", "Secrets in Git are SOPS-encrypted.", Error},
	{RuleRegistry, "allowed-registries", "Images come from the allowed registries.", Error},
	{RuleDeprecatedAPI, "api-versions", "No removed or deprecated API version for the target Kubernetes version.", Error},
	{RuleSchema, "schema", "Every object passes the API server's schema validation (server-side dry-run).", Error},
	{RuleDuplicate, "unique-objects", "No object is declared by two Kustomizations of one cluster.", Error},
	{RuleHelmRender, "helmrelease-render", "Every HelmRelease's chart renders with its values (Helm SDK); the rendered objects pass the object rules.", Error},
	{RuleHelmSource, "helm-chart-reachable", "Every HelmRelease's chart source can be reached and read from where validation runs.", Warning},
	{RuleConverge, "converge", "Every Kustomization becomes Ready with the pushed revision on the twin (--converge).", Error},
	{RuleSource, "source-resolvable", "Every Kustomization's source is the repository, a --source directory or an artifact generated from them; others are reported once each, not built.", Warning},
	{RuleNamespaceSet, "namespace-set", "Every namespaced object Flux applies has a namespace (metadata.namespace, the kustomization.yaml's namespace, or spec.targetNamespace).", Error},
	{RuleAdmission, "admission-policy", "Every object passes the ValidatingAdmissionPolicies of --policies, evaluated with Kubernetes' own admission libraries (Deny is an error, Warn and Audit warnings).", Error},
}

// Stage names a group of rules that runs only when asked for.
type Stage string

// Optional stages.
const (
	StageSchema   Stage = "schema"
	StageConverge Stage = "converge"
	StagePolicies Stage = "policies"
)

// stageOf is the optional stage a rule belongs to ("" for the static rules, which always run).
func stageOf(id RuleID) Stage {
	switch id {
	case RuleSchema:
		return StageSchema
	case RuleConverge:
		return StageConverge
	case RuleAdmission:
		return StagePolicies
	}
	return ""
}

// Finding is one problem.
type Finding struct {
	Rule     RuleID   `json:"rule"`
	Severity Severity `json:"severity"`
	// Configuration and Kustomization say which build found it; Cluster groups configurations.
	Cluster       string `json:"cluster,omitempty"`
	Configuration string `json:"configuration,omitempty"`
	Kustomization string `json:"kustomization,omitempty"`
	// File is relative to the repository root (or the configuration file's path); Line is 1-based, 0
	// when unknown.
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Report is a validation's outcome.
type Report struct {
	Profile       string    `json:"profile"`
	TargetVersion string    `json:"targetVersion"`
	Configs       []Summary `json:"configurations"`
	Findings      []Finding `json:"findings"`
	// Objects is how many objects the builds produced (HelmRelease renders included).
	Objects int `json:"objects"`
	// Stages are the optional stages that ran (schema, converge); rules of the others are reported as
	// skipped in JUnit.
	Stages []Stage `json:"stages,omitempty"`
	// Source is the revision validated when it came from Git (a URL, or --ref).
	Source *SourceInfo `json:"source,omitempty"`
	// HelmReleases are the HelmReleases whose charts rendered.
	HelmReleases []HelmRender `json:"helmReleases,omitempty"`
	// Converge is the converge stage's outcome, when it ran.
	Converge *ConvergeResult `json:"converge,omitempty"`
}

// SourceInfo names the Git revision a report is about.
type SourceInfo struct {
	URL      string `json:"url"`
	Revision string `json:"revision"`
}

// HelmRender is one rendered HelmRelease.
type HelmRender struct {
	Cluster       string `json:"cluster,omitempty"`
	Configuration string `json:"configuration,omitempty"`
	Kustomization string `json:"kustomization,omitempty"`
	Release       string `json:"release"`
	Chart         string `json:"chart"`
	Objects       int    `json:"objects"`
}

// Ran reports whether the rule's stage ran.
func (r *Report) Ran(id RuleID) bool {
	st := stageOf(id)
	if st == "" {
		return true
	}
	for _, s := range r.Stages {
		if s == st {
			return true
		}
	}
	return false
}

// Add appends findings (e.g. of the converge stage) and keeps the order deterministic.
func (r *Report) Add(fs ...Finding) {
	r.Findings = append(r.Findings, fs...)
	r.sort()
}

// MarkStage records that an optional stage ran.
func (r *Report) MarkStage(s Stage) {
	for _, x := range r.Stages {
		if x == s {
			return
		}
	}
	r.Stages = append(r.Stages, s)
}

// Summary is one configuration as validated.
type Summary struct {
	Cluster        string   `json:"cluster,omitempty"`
	Name           string   `json:"name"`
	Scope          Scope    `json:"scope"`
	Namespace      string   `json:"namespace,omitempty"`
	Kustomizations []string `json:"kustomizations"`
}

// Exit codes, as `flux diff`: 0 clean, 1 findings at or above the threshold, 2 the tool could not run.
const (
	ExitClean    = 0
	ExitFindings = 1
	ExitError    = 2
)

// ExitCode is 1 when a finding is at or above failOn, else 0.
func (r *Report) ExitCode(failOn Severity) int {
	for _, f := range r.Findings {
		if f.Severity.AtLeast(failOn) {
			return ExitFindings
		}
	}
	return ExitClean
}

// Count returns how many findings have each severity.
func (r *Report) Count() map[Severity]int {
	m := map[Severity]int{}
	for _, f := range r.Findings {
		m[f.Severity]++
	}
	return m
}

func (r *Report) sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		for _, c := range [][2]string{{a.Cluster, b.Cluster}, {a.Configuration, b.Configuration},
			{a.Kustomization, b.Kustomization}, {string(a.Rule), string(b.Rule)}, {a.File, b.File}} {
			if c[0] != c[1] {
				return c[0] < c[1]
			}
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Message < b.Message
	})
}

// Errors callers can test for.
var (
	// ErrInput is wrapped by every problem with the validator's own input (paths, configuration files).
	ErrInput = errors.New("invalid validation input")
	// ErrSchemaServer is wrapped when the schema API server cannot be used.
	ErrSchemaServer = errors.New("schema API server unusable")
)
