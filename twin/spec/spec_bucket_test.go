package spec

import (
	"errors"
	"strings"
	"testing"
)

const specBuckets = `  buckets:
  - {name: platform-apps, path: oci-artifact}
`

// A bucket source loads: a bucket of spec.buckets whose folder holds the kustomization paths; SourceDir is
// the bucket's folder.
func TestSpecBucketSourceLoads(t *testing.T) {
	s, err := ParseSpec("testdata/specs/bucket.yaml", ociSpec(specBuckets, `  gitops:
  - name: objects
    clusters: ["*"]
    bucket: {name: platform-apps}
    kustomizations:
      apps: {path: ./apps, prune: true}
`))
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if got := s.Spec.Buckets; len(got) != 1 || got[0] != (BucketSpec{Name: "platform-apps", Path: "oci-artifact"}) {
		t.Fatalf("buckets = %+v", got)
	}
	g := s.Spec.GitOps[0]
	if g.Bucket == nil || g.Bucket.Name != "platform-apps" || g.Repo != "" || g.OCI != nil {
		t.Fatalf("gitops[0] = %+v", g)
	}
	if got := s.SourceDir(g); got != "testdata/specs/oci-artifact" {
		t.Errorf("SourceDir = %q", got)
	}
}

// Each mistake in spec.buckets or a bucket source is reported with the file, line and field, and what to do.
func TestSpecBucketSourceErrors(t *testing.T) {
	cfg := func(source string) string {
		return "  gitops:\n  - name: objects\n    clusters: [dev]\n" + source + "    kustomizations: {apps: {path: ./apps}}\n"
	}
	for _, tc := range []struct {
		name, buckets, gitops string
		field, msg            string
		line                  int
	}{
		{"bad name", "  buckets:\n  - {name: Platform_Apps, path: oci-artifact}\n", "", "spec.buckets[0].name", "is not an S3 bucket name", 13},
		{"no path", "  buckets:\n  - {name: platform-apps}\n", "", "spec.buckets[0].path", "is required", 13},
		{"missing folder", "  buckets:\n  - {name: platform-apps, path: no-such-folder}\n", "", "spec.buckets[0].path", "does not exist", 13},
		{"twice", "  buckets:\n  - {name: platform-apps, path: oci-artifact}\n  - {name: platform-apps, path: repo}\n", "", "spec.buckets[1].name", `bucket "platform-apps" is given twice`, 14},
		{"unknown bucket", specBuckets, cfg("    bucket: {name: other}\n"), "spec.gitops[0].bucket.name", `"other" is not a bucket of spec.buckets (have: platform-apps)`, 17},
		{"bucket and repo", specBuckets, cfg("    repo: fleet\n    bucket: {name: platform-apps}\n"), "spec.gitops[0].bucket", "keep one source", 18},
		{"ref with a bucket", specBuckets, cfg("    bucket: {name: platform-apps}\n    ref: {branch: main}\n"), "spec.gitops[0].ref", "a bucket has no branch", 18},
		{"path not in the bucket", specBuckets, "  gitops:\n  - name: objects\n    clusters: [dev]\n    bucket: {name: platform-apps}\n    kustomizations: {apps: {path: ./infrastructure}}\n",
			"spec.gitops[0].kustomizations.apps.path", `"./infrastructure" is not a folder of bucket "platform-apps"`, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("testdata/specs/bucket.yaml", ociSpec(tc.buckets, tc.gitops))
			var se *SpecErrors
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want *SpecErrors", err)
			}
			for _, p := range se.Problems {
				if p.File == "testdata/specs/bucket.yaml" && p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
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
