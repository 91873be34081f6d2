package converge

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hybridtwin/hybridtwin/twin"
)

// branchRef is a repository branch the layout goes to.
type branchRef struct{ repo, branch string }

// artifactRef is a tag of spec.artifacts (in the twin's registry) the layout goes to, for the
// configurations with an oci source.
type artifactRef struct{ repo, tag string }

// OCIName names an oci source for a message: its repository or URL, and its tag, semver or digest.
func OCIName(o *twin.OCISource) string {
	n := o.Repository
	if n == "" {
		n = o.URL
	}
	switch {
	case o.Digest != "":
		return n + "@" + o.Digest
	case o.Semver != "":
		return n + " (semver " + o.Semver + ")"
	case o.Tag != "":
		return n + ":" + o.Tag
	}
	return n + ":" + twin.DefaultOCITag
}

// targets are the (repository, branch) pairs and the artifact tags the spec's GitOps configurations
// sync, and which configurations ("cluster/name") sync each. The converge stage puts the layout where
// each configuration reads it: a new commit on a branch, a new artifact under a tag of spec.artifacts. A
// configuration it cannot follow (a Git tag, semver or commit; an oci url, semver or digest) is refused
// by name.
func targets(s *twin.Spec) (map[branchRef][]string, map[artifactRef][]string, error) {
	branches, artifacts := map[branchRef][]string{}, map[artifactRef][]string{}
	for i, g := range s.Spec.GitOps {
		var add func(c string)
		switch o := g.OCI; {
		case g.Bucket != nil:
			return nil, nil, fmt.Errorf("%s: spec.gitops[%d] (%s) syncs the bucket %q: --converge pushes the layout to a Git branch or a tag of spec.artifacts, not to a bucket; point the configuration at one of those or validate without --converge",
				s.File, i, g.Name, g.Bucket.Name)
		case o != nil && (o.Repository == "" || o.Semver != "" || o.Digest != "" || s.SourceDir(g) == ""):
			return nil, nil, fmt.Errorf("%s: spec.gitops[%d] (%s) syncs the OCI artifact %s: --converge packs the layout as a tag of spec.artifacts in the twin's registry; point the configuration at one (oci: {repository: <a spec.artifacts repository>, tag: <its tag>}) or validate without --converge",
				s.File, i, g.Name, OCIName(o))
		case o != nil:
			k := artifactRef{o.Repository, o.Tag}
			if k.tag == "" {
				k.tag = twin.DefaultOCITag
			}
			add = func(c string) { artifacts[k] = append(artifacts[k], c+"/"+g.Name) }
		case g.Ref.Branch == "":
			return nil, nil, fmt.Errorf("%s: spec.gitops[%d] (%s) syncs %+v, not a branch: --converge pushes the layout to a branch; point the configuration at one", s.File, i, g.Name, g.Ref)
		default:
			k := branchRef{g.Repo, g.Ref.Branch}
			add = func(c string) { branches[k] = append(branches[k], c+"/"+g.Name) }
		}
		for _, c := range s.TargetsOf(g) {
			add(c)
		}
	}
	return branches, artifacts, nil
}

func sortedArtifacts(m map[artifactRef][]string) []artifactRef {
	return slices.SortedFunc(maps.Keys(m), func(a, b artifactRef) int {
		return cmp.Or(strings.Compare(a.repo, b.repo), strings.Compare(a.tag, b.tag))
	})
}

func sortedRefs(m map[branchRef][]string) []branchRef {
	return slices.SortedFunc(maps.Keys(m), func(a, b branchRef) int {
		return cmp.Or(strings.Compare(a.repo, b.repo), strings.Compare(a.branch, b.branch))
	})
}
