package helm

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Getter gives Helm's action configuration the clients of one cluster from a REST config, with one
// discovery cache for every release of the cluster (a discovery per action would cost dozens of
// requests each time).
type Getter struct {
	cfg       *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
}

// NewGetter returns a Getter for the cluster at cfg.
func NewGetter(cfg *rest.Config) (*Getter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	return &Getter{cfg: rest.CopyConfig(cfg), discovery: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)}, nil
}

// forNamespace is the Getter as Helm's RESTClientGetter for one namespace, impersonating user when
// it is not empty (a HelmRelease's spec.serviceAccountName).
func (g *Getter) forNamespace(namespace, user string) genericclioptions.RESTClientGetter {
	cfg := rest.CopyConfig(g.cfg)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	return &nsGetter{g: g, cfg: cfg, ns: namespace}
}

type nsGetter struct {
	g   *Getter
	cfg *rest.Config
	ns  string
}

var _ genericclioptions.RESTClientGetter = (*nsGetter)(nil)

func (n *nsGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(n.cfg), nil }
func (n *nsGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return n.g.discovery, nil
}
func (n *nsGetter) ToRESTMapper() (meta.RESTMapper, error) { return n.g.mapper, nil }
func (n *nsGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return nsClientConfig{n}
}

// nsClientConfig answers the namespace and REST config Helm's kube client asks its kubeconfig loader
// for; there is no kubeconfig file behind it.
type nsClientConfig struct{ n *nsGetter }

var _ clientcmd.ClientConfig = nsClientConfig{}

func (c nsClientConfig) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }
func (c nsClientConfig) ClientConfig() (*rest.Config, error)     { return c.n.ToRESTConfig() }
func (c nsClientConfig) Namespace() (string, bool, error)        { return c.n.ns, true, nil }
func (c nsClientConfig) ConfigAccess() clientcmd.ConfigAccess    { return nil }

// Invalidate drops the discovery cache and the REST mapper's, so kinds a chart (or anything else)
// created since are found.
func (g *Getter) Invalidate() {
	g.discovery.Invalidate()
	if m, ok := g.mapper.(meta.ResettableRESTMapper); ok {
		m.Reset()
	}
}
