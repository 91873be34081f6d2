package cluster

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// The spec file format: a set of workload clusters that one twin runs.
const (
	SpecAPIVersion = "hybridtwin.io/v1alpha1"
	SpecKind       = "ClusterSet"
)

// SpecFile is a YAML file of workload clusters. The time profile and provider are chosen once for the
// whole set (a twin runs all its clusters on one clock); a cluster may repeat them but not differ.
type SpecFile struct {
	APIVersion  string          `json:"apiVersion"`
	Kind        string          `json:"kind"`
	TimeProfile TimeProfileName `json:"timeProfile,omitempty"`
	Provider    ProviderName    `json:"provider,omitempty"`
	Clusters    []Spec          `json:"clusters"`
}

// LoadFile reads a ClusterSet file and returns its clusters, defaulted and validated.
func LoadFile(path string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster spec file: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile parses a ClusterSet document; name is used in errors. Every problem in the file is reported
// at once, each with its field path (e.g. clusters[1].nodes[0].cpu). Errors wrap ErrInvalidSpec.
func ParseFile(name string, data []byte) ([]Spec, error) {
	var f SpecFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w: %v; check the field names and indentation against examples/clusters", name, ErrInvalidSpec, err)
	}
	top := &SpecError{File: name}
	add := func(field, problem string) { top.errs = append(top.errs, fieldError{Field: field, Problem: problem}) }
	if f.APIVersion != SpecAPIVersion {
		add("apiVersion", fmt.Sprintf("%q: use %q", f.APIVersion, SpecAPIVersion))
	}
	if f.Kind != SpecKind {
		add("kind", fmt.Sprintf("%q: use %q", f.Kind, SpecKind))
	}
	if len(f.Clusters) == 0 {
		add("clusters", "is empty; list at least one workload cluster")
	}
	if f.TimeProfile != "" {
		if _, err := Profile(f.TimeProfile); err != nil {
			add("timeProfile", fmt.Sprintf("%q is not a time profile; use %q or %q", f.TimeProfile, ProfileReal, ProfileFast))
		}
	}
	seen := map[string]int{}
	specs := make([]Spec, 0, len(f.Clusters))
	for i, s := range f.Clusters {
		prefix := fmt.Sprintf("clusters[%d]", i)
		if s.TimeProfile != "" && f.TimeProfile != "" && s.TimeProfile != f.TimeProfile {
			add(prefix+".timeProfile", fmt.Sprintf("%q differs from the file's %q; a twin runs all its clusters on one time profile, remove it", s.TimeProfile, f.TimeProfile))
		}
		if s.TimeProfile == "" {
			s.TimeProfile = f.TimeProfile
		}
		if s.Provider == "" {
			s.Provider = f.Provider
		}
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			add(prefix+".name", fmt.Sprintf("%q is also clusters[%d].name; cluster names must be unique", s.Name, j))
		}
		seen[s.Name] = i
		s = s.WithDefaults()
		if err := s.Validate(); err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				return nil, err
			}
			for _, fe := range se.errs {
				add(prefix+"."+fe.Field, fe.Problem)
			}
		}
		specs = append(specs, s)
	}
	if len(top.errs) > 0 {
		return nil, top
	}
	return specs, nil
}
