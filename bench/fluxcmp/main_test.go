package fluxcmp

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestMain silences controller-runtime's logger (envtest logs through it, and without a logger it
// prints a stack trace): benchmark output is the figures, silent by default (STYLE.md).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
