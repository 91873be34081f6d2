package layout_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin/sealedsecrets"
)

// A SealedSecret is how the guidance's other option keeps a secret in Git: no rule flags it. The
// plain-text rule (HT006) concerns core Secrets only, and the static rules pass it as any custom resource.
func TestSealedSecretIsNotFlagged(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "sealedsecret"), layout.Options{})
	if len(rep.Findings) != 0 {
		t.Errorf("static validation of a SealedSecret: %+v", rep.Findings)
	}
	if rep.Objects != 1 {
		t.Errorf("validated %d objects, want the SealedSecret", rep.Objects)
	}
}

// With --schema, a schema server without the SealedSecret CRD reports the object as schema-less
// (HT009, what validate did before it installed the CRD); with the CRD of the pinned sealed-secrets module,
// as `validate --schema` installs it (cmd/hybridtwin installAddonCRDs), the SealedSecret passes its
// server-side dry-run.
func TestSealedSecretSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	cfg := testenv.APIServer(t)
	opts := layout.Options{Schema: cfg}
	rep := validate(t, filepath.Join("testdata", "sealedsecret"), opts)
	if got := of(rep, layout.RuleSchema); len(got) != 1 || got[0].Object == "" {
		t.Fatalf("without the CRD: want one schema finding for the SealedSecret, got %+v", rep.Findings)
	}
	dir, err := sealedsecrets.CRDDir(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fluxcrd.Install(context.Background(), cfg, nil, []string{dir}); err != nil {
		t.Fatal(err)
	}
	rep = validate(t, filepath.Join("testdata", "sealedsecret"), opts)
	if len(rep.Findings) != 0 {
		t.Errorf("with the pinned SealedSecret CRD: %+v", rep.Findings)
	}
}
