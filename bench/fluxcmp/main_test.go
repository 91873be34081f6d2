package fluxcmp

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

// TestMain silences controller-runtime's logger (envtest logs through it, and without a logger it
// prints a stack trace): benchmark output is the figures, silent by default (STYLE.md).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	// Our reconciler runs in this process with the GC setting `hybridtwin up` gives it; the Flux
	// controllers are their own processes at Go's default, as Flux ships them.
	reconciler.SetProcessGC(reconciler.DefaultProfile())
	os.Exit(m.Run())
}
