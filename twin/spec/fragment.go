package spec

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/specyaml"
)

// ErrRefused is wrapped when a cluster operation is refused before anything changed: an unknown cluster
// or pool, a name already running, an estate not at rest, a cluster file with problems, or the hardware
// model saying no. It lives here, with the cluster file's errors, and package twin re-exports it.
var ErrRefused = errors.New("cluster operation refused")

// String makes ReconcilerName print as its value.
func (r ReconcilerName) String() string { return string(r) }

// ClusterFragment is a workload cluster to add to a running twin, read from its own file in the twin
// spec's cluster shape: the fields of a ClusterPlan's workloadClusters entry, the Kubernetes version it
// runs, and optionally GitOps configurations for it in spec.gitops's shape (clusters defaults to the
// fragment's cluster; they may name only it).
type ClusterFragment struct {
	Name string `yaml:"name" json:"name"`
	// KubernetesVersion is checked, not chosen: every cluster of the twin runs the one pinned release
	// (tools/toolcache/pins.go); a cluster file may name it, or leave it out.
	KubernetesVersion    string                    `yaml:"kubernetesVersion" json:"kubernetesVersion,omitempty"`
	ControlPlane         hardware.ControlPlaneSpec `yaml:"controlPlane" json:"controlPlane"`
	LoadBalancer         hardware.LoadBalancerSpec `yaml:"loadBalancer" json:"loadBalancer"`
	LoadBalancerServices int                       `yaml:"loadBalancerServices" json:"loadBalancerServices,omitempty"`
	StorageGB            int                       `yaml:"storageGB" json:"storageGB,omitempty"`
	NodePools            []hardware.NodePool       `yaml:"nodePools" json:"nodePools"`
	GitOps               []GitOpsConfig            `yaml:"gitops" json:"gitops,omitempty"`

	// File is where the fragment was read from; errors name it.
	File string             `yaml:"-" json:"-"`
	pos  specyaml.Positions // field -> line
}

// WorkloadCluster is the fragment as the hardware model plans it.
func (f *ClusterFragment) WorkloadCluster() hardware.WorkloadCluster {
	return hardware.WorkloadCluster{Name: f.Name, ControlPlane: f.ControlPlane, LoadBalancer: f.LoadBalancer,
		LoadBalancerServices: f.LoadBalancerServices, StorageGB: f.StorageGB,
		NodePools: append([]hardware.NodePool(nil), f.NodePools...)}
}

// ClusterFileError is every problem of a cluster file, each naming its line and field. Nothing was
// started. errors.Is(err, ErrInvalidSpec) and errors.Is(err, ErrRefused) hold.
type ClusterFileError struct {
	File     string    `json:"file"`
	Problems []Problem `json:"problems"`
}

func (e *ClusterFileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("%d problem(s) in the cluster file %s; nothing was started:\n%s", len(e.Problems), e.File, strings.Join(lines, "\n"))
}

// Unwrap returns ErrInvalidSpec and ErrRefused.
func (e *ClusterFileError) Unwrap() []error { return []error{ErrInvalidSpec, ErrRefused} }

// Line is the line of a field of the cluster file (nodePools[0].count), 0 when it is not in the file.
func (f *ClusterFragment) Line(field string) int { return f.pos[field] }

// problem is a Problem at field of the cluster file, on the line of the field or its closest parent.
func (f *ClusterFragment) problem(field, format string, args ...any) Problem {
	v := &validator{file: f.File, pos: f.pos}
	v.addAt(field, format, args...)
	return v.problems[0]
}

// fileErr is the problems of a cluster file in line order (those without a line last), or nil.
func fileErr(file string, ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Line, ps[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	return &ClusterFileError{File: file, Problems: ps}
}

// ParseClusterFragment reads a cluster file strictly (an unknown or misspelt field, a duplicate key or a
// wrong type is a problem naming its line) and checks what needs no running twin: the name, the
// presence of at least one node pool, the hardware model's shape rules (names, counts), and that
// its configurations target only this cluster. Problems are a *ClusterFileError.
func ParseClusterFragment(file string, data []byte) (*ClusterFragment, error) {
	f := &ClusterFragment{File: file}
	docs, p := specyaml.Split(data)
	switch {
	case p != nil:
		return nil, fileErr(file, []Problem{{File: file, Line: p.Line, Field: p.Field, Msg: p.Msg}})
	case len(docs) != 1:
		return nil, fileErr(file, []Problem{{File: file, Line: 1, Msg: fmt.Sprintf("holds %d YAML documents; a cluster file is one mapping: name, kubernetesVersion, controlPlane, nodePools, gitops", len(docs))}})
	}
	pos, problems := specyaml.Decode(docs[0].Node, f)
	f.pos = pos
	var ps []Problem
	for _, p := range problems {
		ps = append(ps, Problem{File: file, Line: p.Line, Field: p.Field, Msg: p.Msg})
	}
	if f.Name == "" {
		ps = append(ps, f.problem("name", "is required: the workload cluster's name (a DNS label)"))
	}
	if len(f.NodePools) == 0 && !slices.ContainsFunc(problems, func(p specyaml.Problem) bool { return strings.HasPrefix(p.Field, "nodePools") }) {
		ps = append(ps, f.problem("nodePools", "list at least one node pool: {name: linux, vmSize: Standard_K8S3_v1, count: 2}"))
	}
	for i := range f.GitOps {
		g := &f.GitOps[i]
		if len(g.Clusters) == 0 && f.Name != "" {
			g.Clusters = []string{f.Name}
		}
		for j, c := range g.Clusters {
			if c != f.Name && f.Name != "" {
				ps = append(ps, f.problem(fmt.Sprintf("gitops[%d].clusters[%d]", i, j), "%q: a cluster file's configurations target only its own cluster %q; leave clusters out", c, f.Name))
			}
		}
	}
	if len(ps) == 0 {
		// The hardware model's shape rules, on a plan of this one cluster.
		one := &hardware.Plan{APIVersion: hardware.APIVersion, Kind: hardware.KindClusterPlan}
		one.Metadata.Name = "cluster-file"
		one.Spec.WorkloadClusters = []hardware.WorkloadCluster{f.WorkloadCluster()}
		if err := one.Validate(); err != nil {
			ps = append(ps, f.fromHardware(err, "spec.workloadClusters[0]"))
		}
	}
	if len(ps) > 0 {
		return nil, fileErr(file, ps)
	}
	return f, nil
}

// fromHardware names a hardware model spec error about the fragment's cluster (at prefix in a plan) by
// the cluster file's own field and line.
func (f *ClusterFragment) fromHardware(err error, prefix string) Problem {
	var se *hardware.SpecError
	if errors.As(err, &se) {
		if rest, ok := strings.CutPrefix(se.Field, prefix); ok {
			return f.problem(strings.TrimPrefix(rest, "."), "%s", se.Msg)
		}
		return f.problem("", "with the twin's plan: %s", se.Error())
	}
	return f.problem("", "%v", err)
}

// CheckFragment checks a cluster file against the running twin (under its operation lock): its name is
// not taken (running are the clusters the twin runs now), it names the Kubernetes release the twin runs
// (runningVersion, or none), the hardware model accepts its VM sizes and counts in the profile (next is the
// plan with the new cluster at index at), and its configurations are valid against the twin's
// repositories (the spec's own validator) and do not reuse the name of a configuration the spec already
// creates on it.
func (s *Spec) CheckFragment(f *ClusterFragment, running []string, runningVersion string, next *hardware.Plan, at int) error {
	var ps []Problem
	if slices.Contains(running, f.Name) {
		ps = append(ps, f.problem("name", "cluster %q already runs in twin %s (have: %s); pick another name, or `hybridtwin cluster delete %s` first",
			f.Name, s.Metadata.Name, strings.Join(running, ", "), f.Name))
	} else if slices.Contains(s.ClusterNames(), f.Name) {
		ps = append(ps, f.problem("name", "%q is a workload cluster of the twin's spec (%s); bring it back as planned with `hybridtwin cluster recreate %s`, or pick another name",
			f.Name, s.File, f.Name))
	}
	// The release the twin's clusters run (the pinned one, tools/toolcache/pins.go, for the embedded
	// provider): a cluster file may name it, not another.
	if v, have := f.KubernetesVersion, runningVersion; v != "" && have != "" && strings.TrimPrefix(v, "v") != strings.TrimPrefix(have, "v") {
		ps = append(ps, f.problem("kubernetesVersion", "%q: the twin's clusters run Kubernetes %s, the one release it has; write %s or leave it out", v, have, have))
	}
	if len(ps) == 0 {
		// The profile's catalog and allowed values: the static planner on the plan with the new cluster
		// (the verdict on the running estate comes from PlaceVMs).
		if _, err := hardware.Evaluate(s.Inventory, next); err != nil {
			ps = append(ps, f.fromHardware(err, fmt.Sprintf("spec.workloadClusters[%d]", at)))
		}
	}
	if len(f.GitOps) > 0 {
		c := *s
		c.Plan = next
		c.Spec.GitOps = f.GitOps
		c.applyDefaults() // scope and namespace, in f.GitOps
		v := &validator{file: f.File, pos: specyaml.Positions{}}
		for k, l := range f.pos {
			v.pos["spec."+k] = l
		}
		c.validate(v)
		for _, p := range v.problems {
			if rest, ok := strings.CutPrefix(p.Field, "spec.gitops"); ok {
				p.Field = "gitops" + rest
				ps = append(ps, p)
			}
		}
		for i, g := range f.GitOps {
			for j, sg := range s.Spec.GitOps {
				if sg.Name == g.Name && sg.Targets(f.Name) {
					ps = append(ps, f.problem(fmt.Sprintf("gitops[%d].name", i), "%q is also spec.gitops[%d] of the twin's spec, which targets this cluster too; rename it", g.Name, j))
				}
			}
		}
	}
	return fileErr(f.File, ps)
}

// Targets reports whether a GitOps configuration of the spec applies to a cluster: named in its list, or
// the list is ["*"] (every cluster the twin runs, also one added later).
func (g GitOpsConfig) Targets(clusterName string) bool {
	for _, c := range g.Clusters {
		if c == "*" || c == clusterName {
			return true
		}
	}
	return false
}
