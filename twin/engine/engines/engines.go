// Package engines is the list of the twin's GitOps engines, by the name a twin spec gives in
// spec.reconciler (and spec.clusters.<name>.reconciler). Adding an engine is one line here.
package engines

import (
	"maps"
	"slices"

	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/engine/hybridtwin"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

// Default is the engine of a spec that names none.
const Default = "hybridtwin"

var all = map[string]engine.Engine{
	Default: hybridtwin.Engine{}, // the twin's own Flux-semantics reconciler
	"flux":  flux.Engine{},       // real Flux controllers of the pinned release
}

// Lookup returns the engine a spec names.
func Lookup(name string) (engine.Engine, bool) {
	e, ok := all[name]
	return e, ok
}

// Names are the engines a spec may name, sorted.
func Names() []string { return slices.Sorted(maps.Keys(all)) }
