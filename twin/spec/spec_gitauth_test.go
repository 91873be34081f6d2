package spec

import (
	"errors"
	"strings"
	"testing"
)

// gitAuth loads as given on a Git source; a value other than https or ssh, or gitAuth on a bucket source,
// is reported with the file, line and field.
func TestSpecGitAuth(t *testing.T) {
	cfg := func(source string) string {
		return "  gitops:\n  - name: fleet\n    clusters: [dev]\n" + source + "    kustomizations: {apps: {path: ./apps}}\n"
	}
	s, err := ParseSpec("testdata/specs/gitauth.yaml", ociSpec("", cfg("    repo: fleet\n    ref: {branch: main}\n    gitAuth: ssh\n")))
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if got := s.Spec.GitOps[0].GitAuth; got != GitAuthSSH {
		t.Fatalf("gitAuth = %q", got)
	}
	for _, tc := range []struct {
		name, buckets, gitops, msg string
	}{
		{"unknown", "", cfg("    repo: fleet\n    ref: {branch: main}\n    gitAuth: scp\n"), `"scp" is not a Git auth; use https (the default) or ssh`},
		{"on a bucket", specBuckets, cfg("    bucket: {name: platform-apps}\n    gitAuth: ssh\n"), "is for a Git source (repo)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("testdata/specs/gitauth.yaml", ociSpec(tc.buckets, tc.gitops))
			var se *SpecErrors
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SpecErrors", err)
			}
			for _, p := range se.Problems {
				if p.Field == "spec.gitops[0].gitAuth" && strings.Contains(p.Msg, tc.msg) && p.Line > 0 {
					return
				}
			}
			t.Fatalf("no problem at spec.gitops[0].gitAuth containing %q:\n%v", tc.msg, err)
		})
	}
}
