package providers

import (
	"fmt"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/cluster/kind"
)

// Options configure whichever provider is chosen.
type Options struct {
	Embedded embedded.Options
	Kind     kind.Options
}

// Provider is a cluster provider that can also fail nodes and export logs (both implementations can).
type Provider interface {
	cluster.Provider
	cluster.NodeFaults
	cluster.LogExporter
}

// For returns a new provider of the given kind ("" means cluster.DefaultProvider).
func For(name cluster.ProviderName, o Options) (Provider, error) {
	switch name {
	case "", cluster.ProviderEmbedded:
		return embedded.New(o.Embedded), nil
	case cluster.ProviderKind:
		return kind.New(o.Kind), nil
	}
	return nil, fmt.Errorf("provider %q: %w; use %q or %q", name, cluster.ErrInvalidSpec, cluster.ProviderEmbedded, cluster.ProviderKind)
}
