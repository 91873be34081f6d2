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

// ForSpecs returns the one provider a set of specs (a twin's clusters) asks for. A twin runs all its
// clusters on one provider; specs that ask for different ones are refused.
func ForSpecs(specs []cluster.Spec, o Options) (Provider, error) {
	var name cluster.ProviderName
	for i, s := range specs {
		p := s.WithDefaults().Provider
		if i > 0 && p != name {
			return nil, fmt.Errorf("cluster %q asks for provider %q but %q asks for %q: %w; a twin runs all its clusters on one provider",
				s.Name, p, specs[0].Name, name, cluster.ErrInvalidSpec)
		}
		name = p
	}
	return For(name, o)
}
