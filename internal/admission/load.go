package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrInput marks a policy directory that cannot be used as given (exit code 2 in the command line).
var ErrInput = errors.New("invalid policy input")

// groupVersion is the only API version read: admissionregistration.k8s.io/v1 is GA since Kubernetes
// v1.30 (kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy).
const groupVersion = "admissionregistration.k8s.io/v1"

// Origin is where a policy object was declared.
type Origin struct {
	// File is relative to the directory Load read; Line is the document's first line (1-based).
	File string
	Line int
}

// Policy is one ValidatingAdmissionPolicy, defaulted as the API server defaults it.
type Policy struct {
	*admissionregistrationv1.ValidatingAdmissionPolicy
	Origin
}

// Binding is one ValidatingAdmissionPolicyBinding, defaulted as the API server defaults it.
type Binding struct {
	*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	Origin
}

// Set is the policies and bindings of a directory, sorted by name.
type Set struct {
	Dir      string
	Policies []Policy
	Bindings []Binding
}

// Load reads every .yaml, .yml and .json file under dir (recursively) and keeps the
// ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding documents; other documents (a
// kustomization.yaml, a Namespace) are skipped. A policy document that does not decode strictly, an
// apiVersion other than admissionregistration.k8s.io/v1, a binding without policyName or
// validationActions, or two objects of one kind and name is an ErrInput naming the file and line.
func Load(dir string) (*Set, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: policy directory %q does not exist or is not a directory", ErrInput, dir)
	}
	set := &Set{Dir: dir}
	var errs []error
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read policy file %s: %w", path, err)
		}
		errs = append(errs, set.read(filepath.ToSlash(rel), data)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	errs = append(errs, set.check()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(set.Policies) == 0 {
		return nil, fmt.Errorf("%w: %s holds no ValidatingAdmissionPolicy (apiVersion %s)", ErrInput, dir, groupVersion)
	}
	sort.Slice(set.Policies, func(i, j int) bool { return set.Policies[i].Name < set.Policies[j].Name })
	sort.Slice(set.Bindings, func(i, j int) bool { return set.Bindings[i].Name < set.Bindings[j].Name })
	return set, nil
}

// read decodes the policy documents of one file.
func (s *Set) read(file string, data []byte) []error {
	var errs []error
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var node yamlv3.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return errs
		}
		if err != nil {
			return append(errs, fmt.Errorf("%w: %s: not YAML: %v", ErrInput, file, err))
		}
		line := node.Line
		if len(node.Content) > 0 {
			line = node.Content[0].Line
		}
		var doc map[string]any
		if err := node.Decode(&doc); err != nil || doc == nil {
			continue
		}
		kind, _ := doc["kind"].(string)
		if kind != "ValidatingAdmissionPolicy" && kind != "ValidatingAdmissionPolicyBinding" {
			continue
		}
		at := Origin{File: file, Line: line}
		if av, _ := doc["apiVersion"].(string); av != groupVersion {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %s has apiVersion %q: use %s", ErrInput, file, line, kind, av, groupVersion))
			continue
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %s: %v", ErrInput, file, line, kind, err))
			continue
		}
		jd := json.NewDecoder(bytes.NewReader(raw))
		jd.DisallowUnknownFields()
		switch kind {
		case "ValidatingAdmissionPolicy":
			p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
			if err := jd.Decode(p); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s:%d: ValidatingAdmissionPolicy: %v", ErrInput, file, line, err))
				continue
			}
			defaultPolicy(p)
			s.Policies = append(s.Policies, Policy{ValidatingAdmissionPolicy: p, Origin: at})
		case "ValidatingAdmissionPolicyBinding":
			b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			if err := jd.Decode(b); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s:%d: ValidatingAdmissionPolicyBinding: %v", ErrInput, file, line, err))
				continue
			}
			defaultBinding(b)
			s.Bindings = append(s.Bindings, Binding{ValidatingAdmissionPolicyBinding: b, Origin: at})
		}
	}
}

// check refuses what the API server's validation of these objects would refuse and evaluation needs:
// names, a binding's policyName and validationActions, a policy's validations and matchConstraints.
func (s *Set) check() []error {
	var errs []error
	seen := map[string]Origin{}
	dup := func(kind, name string, at Origin) {
		key := kind + "/" + name
		if prev, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %s %q is also declared at %s:%d: keep one", ErrInput, at.File, at.Line, kind, name, prev.File, prev.Line))
		}
		seen[key] = at
	}
	for _, p := range s.Policies {
		at := fmt.Sprintf("%s:%d: ValidatingAdmissionPolicy %q", p.File, p.Line, p.Name)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%w: %s:%d: ValidatingAdmissionPolicy: metadata.name is required", ErrInput, p.File, p.Line))
			continue
		}
		dup("ValidatingAdmissionPolicy", p.Name, p.Origin)
		if p.Spec.MatchConstraints == nil || len(p.Spec.MatchConstraints.ResourceRules) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s: spec.matchConstraints.resourceRules is required (the API server refuses a policy without it)", ErrInput, at))
		}
		if len(p.Spec.Validations) == 0 && len(p.Spec.AuditAnnotations) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s: spec.validations (or spec.auditAnnotations) must not be empty", ErrInput, at))
		}
	}
	for _, b := range s.Bindings {
		at := fmt.Sprintf("%s:%d: ValidatingAdmissionPolicyBinding %q", b.File, b.Line, b.Name)
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("%w: %s:%d: ValidatingAdmissionPolicyBinding: metadata.name is required", ErrInput, b.File, b.Line))
			continue
		}
		dup("ValidatingAdmissionPolicyBinding", b.Name, b.Origin)
		if b.Spec.PolicyName == "" {
			errs = append(errs, fmt.Errorf("%w: %s: spec.policyName is required", ErrInput, at))
		}
		if len(b.Spec.ValidationActions) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s: spec.validationActions is required: list Deny, Warn and/or Audit", ErrInput, at))
		}
		for _, a := range b.Spec.ValidationActions {
			switch a {
			case admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit:
			default:
				errs = append(errs, fmt.Errorf("%w: %s: spec.validationActions: unknown action %q: use Deny, Warn or Audit", ErrInput, at, a))
			}
		}
	}
	return errs
}

// defaultPolicy sets what the API server defaults on a ValidatingAdmissionPolicy (Kubernetes v1.33
// pkg/apis/admissionregistration/v1/defaults.go: SetDefaults_ValidatingAdmissionPolicySpec,
// SetDefaults_MatchResources, SetDefaults_Rule): failurePolicy Fail, matchPolicy Equivalent, empty
// namespace and object selectors, rule scope "*".
func defaultPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		f := admissionregistrationv1.Fail
		p.Spec.FailurePolicy = &f
	}
	defaultMatch(p.Spec.MatchConstraints)
}

// defaultBinding defaults a binding's matchResources as the API server does.
func defaultBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	defaultMatch(b.Spec.MatchResources)
}

func defaultMatch(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.MatchPolicy == nil {
		mp := admissionregistrationv1.Equivalent
		m.MatchPolicy = &mp
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	for _, rules := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				s := admissionregistrationv1.AllScopes
				rules[i].Scope = &s
			}
		}
	}
}
