package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"helm.sh/helm/v4/pkg/postrenderer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Kustomize is a HelmRelease's spec.postRenderers[].kustomize as a Helm post-renderer: the rendered
// manifest is the one resource of an in-memory kustomization with these patches and images, built
// by krusty with plugins disabled (helm-controller internal/postrender Kustomize).
type Kustomize struct {
	Patches []kustypes.Patch
	Images  []kustypes.Image
}

var _ postrenderer.PostRenderer = (*Kustomize)(nil)

// krustyMu serializes kustomize builds: krusty is not safe for concurrent use
// (kubernetes-sigs/kustomize#3659), which helm-controller guards the same way.
var krustyMu sync.Mutex

// Run applies the patches and images to the rendered manifest.
func (k *Kustomize) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	const input = "helm-output.yaml"
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile(input, rendered.Bytes()); err != nil {
		return nil, err
	}
	kz := kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: []string{input}, Patches: k.Patches, Images: k.Images,
	}
	b, err := json.Marshal(kz)
	if err != nil {
		return nil, err
	}
	if err := fs.WriteFile("kustomization.yaml", b); err != nil {
		return nil, err
	}
	krustyMu.Lock()
	m, err := krusty.MakeKustomizer(&krusty.Options{LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig: kustypes.DisabledPluginConfig()}).Run(fs, ".")
	krustyMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("kustomize post-renderer: %w", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize post-renderer: %w", err)
	}
	return bytes.NewBuffer(out), nil
}

// Metadata sets labels and annotations on every rendered object (metadata only, as kustomize's label
// and annotation transformers with metadata/labels and metadata/annotations field specs): a
// HelmRelease's spec.commonMetadata, and last the origin labels helm-controller puts on every object
// (helm.toolkit.fluxcd.io/name and /namespace; OriginLabels), so `kubectl get -l` finds a release's
// objects and a takeover by helm-controller sees no change.
type Metadata struct {
	Labels, Annotations map[string]string
}

// OriginLabels are the labels naming the HelmRelease namespace/name of group's API.
func OriginLabels(group, namespace, name string) Metadata {
	return Metadata{Labels: map[string]string{group + "/name": name, group + "/namespace": namespace}}
}

var _ postrenderer.PostRenderer = Metadata{}

// Run sets the labels and annotations.
func (md Metadata) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	m, err := resmap.NewFactory(provider.NewDefaultDepProvider().GetResourceFactory()).NewResMapFromBytes(rendered.Bytes())
	if err != nil {
		return nil, fmt.Errorf("metadata post-renderer: %w", err)
	}
	merge := func(cur, add map[string]string) map[string]string {
		if cur == nil {
			cur = map[string]string{}
		}
		for k, v := range add {
			cur[k] = v
		}
		return cur
	}
	for _, r := range m.Resources() {
		if len(md.Labels) > 0 {
			if err := r.SetLabels(merge(r.GetLabels(), md.Labels)); err != nil {
				return nil, fmt.Errorf("metadata post-renderer: %w", err)
			}
		}
		if len(md.Annotations) > 0 {
			if err := r.SetAnnotations(merge(r.GetAnnotations(), md.Annotations)); err != nil {
				return nil, fmt.Errorf("metadata post-renderer: %w", err)
			}
		}
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("metadata post-renderer: %w", err)
	}
	return bytes.NewBuffer(out), nil
}

// Chain runs post-renderers in order, each on the previous one's output.
type Chain []postrenderer.PostRenderer

var _ postrenderer.PostRenderer = Chain(nil)

// Run runs the chain.
func (c Chain) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	out := rendered
	for _, p := range c {
		var err error
		if out, err = p.Run(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}
