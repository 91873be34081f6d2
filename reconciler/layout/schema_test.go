package layout_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// TestSchemaDryRun validates against a real kube-apiserver (tool cache): a CRD defined in the repository
// is applied first, and a custom resource with a wrongly typed field and a Deployment with an unknown
// field are rejected by server-side dry-run; the corrected repository passes.
func TestSchemaDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	opts := layout.Options{Schema: testenv.APIServer(t)}

	rep := validate(t, filepath.Join("testdata", "schema", "fail"), opts)
	got := of(rep, layout.RuleSchema)
	msgs := ""
	for _, f := range got {
		msgs += f.Object + ": " + f.Message + "\n"
	}
	for _, want := range []string{"Widget.example.hybridtwin.io/shop/big", "spec.size", "Deployment.apps/shop/web", `unknown field "spec.replica"`} {
		if !strings.Contains(msgs, want) {
			t.Errorf("schema findings lack %q:\n%s", want, msgs)
		}
	}
	if len(got) != 2 {
		t.Errorf("want 2 schema findings, got:\n%s", msgs)
	}
	for _, f := range got {
		if f.Severity != layout.Error || f.File != "app/objects.yaml" || f.Line == 0 {
			t.Errorf("finding %+v: want error at app/objects.yaml:<line>", f)
		}
	}

	rep = validate(t, filepath.Join("testdata", "schema", "pass"), opts)
	if len(rep.Findings) != 0 {
		t.Errorf("pass/: %+v", rep.Findings)
	}
}
