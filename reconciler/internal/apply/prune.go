package apply

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
)

// Prune deletes stale objects with fluxcd/pkg/ssa's DeleteAll: only objects that still carry this
// Kustomization's owner labels (so an object another Kustomization has taken over is left alone), and
// never objects annotated kustomize.toolkit.fluxcd.io/prune: disabled. It returns the IDs that were
// deleted (or already gone) and those skipped.
func (e *Engine) Prune(ctx context.Context, c client.Client, mapper meta.RESTMapper, stale []core.ObjID,
	versions map[core.ObjID]string, ownerLabels map[string]string) (deleted, skipped []core.ObjID, err error) {
	if len(stale) == 0 {
		return nil, nil, nil
	}
	objs := make([]*unstructured.Unstructured, 0, len(stale))
	for _, id := range stale {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(ObjMetadata(id).GroupKind.WithVersion(versions[id]))
		u.SetNamespace(id.Namespace)
		u.SetName(id.Name)
		objs = append(objs, u)
	}
	rm := ssa.NewResourceManager(c, statusPoller(c, mapper), ssa.Owner{Field: e.opts.FieldManager})
	cs, err := rm.DeleteAll(ctx, objs, ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        ownerLabels,
		Exclusions:        map[string]string{core.PruneKey: core.DisabledValue},
	})
	if cs != nil {
		for _, en := range cs.Entries {
			id := core.ObjID{Group: en.ObjMetadata.GroupKind.Group, Kind: en.ObjMetadata.GroupKind.Kind,
				Namespace: en.ObjMetadata.Namespace, Name: en.ObjMetadata.Name}
			switch en.Action {
			case ssa.DeletedAction:
				deleted = append(deleted, id)
			case ssa.SkippedAction:
				skipped = append(skipped, id)
			}
		}
	}
	if err != nil {
		return deleted, skipped, fmt.Errorf("prune failed: %w", err)
	}
	return deleted, skipped, nil
}

// Wait waits until every object is ready by kstatus (kustomize-controller's health check), polling
// at interval up to timeout. readers are custom status readers (spec.healthCheckExprs), built for the
// mapper.
func (e *Engine) Wait(ctx context.Context, c client.Client, mapper meta.RESTMapper, ids []core.ObjID, interval, timeout time.Duration,
	readers ...func(meta.RESTMapper) engine.StatusReader) error {
	if len(ids) == 0 {
		return nil
	}
	set := make(object.ObjMetadataSet, 0, len(ids))
	for _, id := range ids {
		set = append(set, ObjMetadata(id))
	}
	var custom []engine.StatusReader
	for _, r := range readers {
		custom = append(custom, r(mapper))
	}
	rm := ssa.NewResourceManager(c, statusPoller(c, mapper, custom...), ssa.Owner{Field: e.opts.FieldManager})
	return rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: interval, Timeout: timeout})
}

// statusPoller reads each object directly. kstatus' default caching reader LISTs every kind and
// namespace of the set on every poll: for 1000 one-ConfigMap Kustomizations in one namespace that is a
// LIST of 1000 objects per health check (quadratic); a GET per object is what a small set needs.
func statusPoller(c client.Client, mapper meta.RESTMapper, custom ...engine.StatusReader) *polling.StatusPoller {
	return polling.NewStatusPoller(c, mapper, polling.Options{CustomStatusReaders: custom,
		ClusterReaderFactory: engine.ClusterReaderFactoryFunc(clusterreader.NewDirectClusterReader)})
}
