package spec

import (
	"errors"
	"strings"
	"testing"
)

// ociSpec is a one-cluster twin spec (resolved against testdata/specs) whose spec.gitops entries are gitops.
func ociSpec(artifacts, gitops string) []byte {
	return []byte(`apiVersion: hybridtwin.io/v1alpha1
kind: Twin
metadata:
  name: oci-spec
spec:
  hardware:
    inventory: ../../../../examples/hardware/branch-4node.yaml
  git:
    repos:
    - name: fleet
      path: repo
` + artifacts + gitops + `---
apiVersion: hybridtwin.io/v1alpha1
kind: ClusterPlan
metadata:
  name: oci-spec
spec:
  workloadClusters:
  - name: dev
    controlPlane: {count: 1, vmSize: Standard_A4_v2}
    nodePools:
    - {name: linux, vmSize: Standard_K8S3_v1, count: 1}
`)
}

const ociArtifacts = `  artifacts:
  - {repository: manifests/platform, tag: "1.0.0", path: oci-artifact}
  - {repository: manifests/platform, tag: latest, path: oci-artifact}
`

// An oci block loads: a repository of spec.artifacts (its tag's folder checked for the kustomization
// paths), a URL of another registry with semver or digest, and the Git configuration beside it unchanged.
func TestSpecOCISourceLoads(t *testing.T) {
	s, err := ParseSpec("testdata/specs/oci.yaml", ociSpec(ociArtifacts, `  gitops:
  - name: platform
    clusters: ["*"]
    oci: {repository: manifests/platform, tag: "1.0.0"}
    kustomizations:
      apps: {path: ./apps, prune: true}
  - name: platform-latest
    clusters: [dev]
    oci: {repository: manifests/platform}
    kustomizations:
      apps: {path: ./apps}
  - name: elsewhere
    clusters: [dev]
    oci: {url: "oci://registry.example:5000/manifests/platform", semver: ">=1.0.0", insecure: true}
    kustomizations:
      apps: {path: ./apps}
  - name: pinned
    clusters: [dev]
    oci: {url: "oci://registry.example/manifests/platform", digest: "sha256:`+strings.Repeat("ab", 32)+`"}
    kustomizations:
      apps: {path: ./apps}
  - name: fleet
    clusters: [dev]
    repo: fleet
    ref: {branch: main}
    kustomizations:
      infra: {path: ./infrastructure}
`))
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if got := len(s.Spec.Artifacts); got != 2 {
		t.Fatalf("artifacts: %d, want 2", got)
	}
	o := s.Spec.GitOps[0].OCI
	if o == nil || o.Repository != "manifests/platform" || o.Tag != "1.0.0" || o.URL != "" {
		t.Fatalf("gitops[0].oci = %+v", o)
	}
	if o := s.Spec.GitOps[2].OCI; o == nil || o.URL != "oci://registry.example:5000/manifests/platform" || o.Semver != ">=1.0.0" || !o.Insecure {
		t.Fatalf("gitops[2].oci = %+v", o)
	}
	if s.Spec.GitOps[4].OCI != nil || s.Spec.GitOps[4].Repo != "fleet" {
		t.Fatalf("the Git configuration changed: %+v", s.Spec.GitOps[4])
	}
	for i, want := range []string{"testdata/specs/oci-artifact", "testdata/specs/oci-artifact", "", "", "testdata/specs/repo"} {
		if got := s.SourceDir(s.Spec.GitOps[i]); got != want {
			t.Errorf("SourceDir(gitops[%d]) = %q, want %q", i, got, want)
		}
	}
	if g := s.Spec.GitOps[0]; g.Namespace != "flux-system" || g.Scope != "cluster" {
		t.Fatalf("defaults not applied to an oci configuration: scope %q namespace %q", g.Scope, g.Namespace)
	}
}

// Each mistake in an oci block or spec.artifacts is reported with the file, line and field, and what to do.
func TestSpecOCISourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, artifacts, gitops string
		field, msg              string
		line                    int
	}{
		{"repo and oci", ociArtifacts, `  gitops:
  - name: both
    clusters: [dev]
    repo: fleet
    ref: {branch: main}
    oci: {repository: manifests/platform}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci", "names both a Git repository (repo: fleet) and an OCI artifact; keep one", 20},
		{"neither repository nor url", ociArtifacts, `  gitops:
  - name: empty
    clusters: [dev]
    oci: {tag: "1.0.0"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci", "name the artifact: repository (one of spec.artifacts", 18},
		{"repository and url", ociArtifacts, `  gitops:
  - name: two
    clusters: [dev]
    oci: {repository: manifests/platform, url: "oci://r.example/x"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci", "gives both repository and url; keep one", 18},
		{"unknown repository", ociArtifacts, `  gitops:
  - name: typo
    clusters: [dev]
    oci: {repository: manifests/platfrom, tag: "1.0.0"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.repository", `"manifests/platfrom" is not a repository of spec.artifacts (have: manifests/platform)`, 18},
		{"tag not pushed", ociArtifacts, `  gitops:
  - name: missing
    clusters: [dev]
    oci: {repository: manifests/platform, tag: "2.0.0"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.tag", `tag "2.0.0" of "manifests/platform" is not in spec.artifacts (have: 1.0.0, latest)`, 18},
		{"default tag not pushed", `  artifacts:
  - {repository: manifests/platform, tag: "1.0.0", path: oci-artifact}
`, `  gitops:
  - name: nolatest
    clusters: [dev]
    oci: {repository: manifests/platform}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci", `tag "latest" of "manifests/platform" is not in spec.artifacts`, 17},
		{"two refs", ociArtifacts, `  gitops:
  - name: refs
    clusters: [dev]
    oci: {repository: manifests/platform, tag: "1.0.0", semver: "1.x"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci", "sets tag and semver: set only one of tag, semver or digest", 18},
		{"bad digest", ociArtifacts, `  gitops:
  - name: digest
    clusters: [dev]
    oci: {url: "oci://r.example/manifests/platform", digest: "sha256:abc"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.digest", "must be sha256: followed by 64 lower-case hex digits", 18},
		{"url scheme", ociArtifacts, `  gitops:
  - name: scheme
    clusters: [dev]
    oci: {url: "https://r.example/manifests/platform"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.url", "must start with oci://", 18},
		{"url with tag", ociArtifacts, `  gitops:
  - name: urltag
    clusters: [dev]
    oci: {url: "oci://r.example/manifests/platform:1.0.0"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.url", "put the tag in oci.tag", 18},
		{"git ref with oci", ociArtifacts, `  gitops:
  - name: gitref
    clusters: [dev]
    ref: {branch: main}
    oci: {repository: manifests/platform, tag: "1.0.0"}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].ref", "is for Git sources; for an oci source set oci.tag, oci.semver or oci.digest", 18},
		{"insecure on repository", ociArtifacts, `  gitops:
  - name: insecure
    clusters: [dev]
    oci: {repository: manifests/platform, tag: "1.0.0", insecure: true}
    kustomizations: {apps: {path: ./apps}}
`, "spec.gitops[0].oci.insecure", "is for url", 18},
		{"path not in the artifact", ociArtifacts, `  gitops:
  - name: nopath
    clusters: [dev]
    oci: {repository: manifests/platform, tag: "1.0.0"}
    kustomizations:
      apps: {path: ./apps/prod}
`, "spec.gitops[0].kustomizations.apps.path", `"./apps/prod" is not a folder of artifact manifests/platform:1.0.0`, 20},
		{"artifact folder missing", `  artifacts:
  - {repository: manifests/platform, tag: "1.0.0", path: no-such-folder}
`, "", "spec.artifacts[0].path", "does not exist", 13},
		{"artifact tag", `  artifacts:
  - {repository: manifests/platform, tag: "v1 beta", path: oci-artifact}
`, "", "spec.artifacts[0].tag", "is not a tag", 13},
		{"artifact twice", `  artifacts:
  - {repository: manifests/platform, tag: "1.0.0", path: oci-artifact}
  - {repository: manifests/platform, tag: "1.0.0", path: oci-artifact}
`, "", "spec.artifacts[1].tag", "manifests/platform:1.0.0 is given twice", 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("testdata/specs/oci.yaml", ociSpec(tc.artifacts, tc.gitops))
			var se *SpecErrors
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want *SpecErrors", err)
			}
			for _, p := range se.Problems {
				if p.File == "testdata/specs/oci.yaml" && p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					if p.Line != tc.line {
						t.Errorf("problem at line %d, want %d: %s", p.Line, tc.line, p)
					}
					return
				}
			}
			t.Fatalf("no problem at %s containing %q:\n%v", tc.field, tc.msg, err)
		})
	}
}

// The example twin with OCI sources (examples/twins/oci-source.yaml) loads.
func TestSpecOCIExampleLoads(t *testing.T) {
	s, err := LoadSpec("../../examples/twins/oci-source.yaml")
	if err != nil {
		t.Fatalf("LoadSpec: %v", err)
	}
	for _, g := range s.Spec.GitOps {
		if g.OCI == nil || g.OCI.Repository != "manifests/gitops-config" {
			t.Errorf("%s: oci = %+v, want the artifact manifests/gitops-config", g.Name, g.OCI)
		}
	}
}
