package notify

import (
	"context"
	"log/slog"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

// FromReconciler turns a reconciler event into Flux's event type as the reconciler's Flux counterpart
// would send it to notification-controller: Warning events are errors, Normal ones info; the reporting
// controller and API group follow the kind (sources: source-controller, Kustomization:
// kustomize-controller, HelmRelease: helm-controller), and the revision goes into the metadata under the
// object's API group, as Flux's event recorder puts it.
func FromReconciler(ev reconciler.Event) eventv1.Event {
	group, version, controller := kustomizev1.GroupVersion.Group, kustomizev1.GroupVersion.Version, "kustomize-controller"
	switch ev.Kind {
	case reconciler.KindGitRepository, reconciler.KindOCIRepository, reconciler.KindBucket, reconciler.KindHelmRepository,
		reconciler.KindHelmChart: // all served as source.toolkit.fluxcd.io/v1 (source-controller api v1.9.6)
		group, version, controller = sourcev1.GroupVersion.Group, sourcev1.GroupVersion.Version, "source-controller"
	case reconciler.KindHelmRelease:
		group, version, controller = helmv2.GroupVersion.Group, helmv2.GroupVersion.Version, "helm-controller"
	}
	sev := eventv1.EventSeverityInfo
	if ev.Type == reconciler.EventWarning {
		sev = eventv1.EventSeverityError
	}
	out := eventv1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: string(ev.Kind), Name: ev.Name, Namespace: ev.Namespace,
			APIVersion: group + "/" + version},
		Severity: sev, Timestamp: metav1.NewTime(ev.Time), Message: ev.Message, Reason: ev.Reason,
		ReportingController: controller, ReportingInstance: ev.Cluster,
	}
	if ev.Revision != "" {
		out.Metadata = map[string]string{group + "/" + eventv1.MetaRevisionKey: ev.Revision}
	}
	return out
}

// Forwarder returns a function for reconciler.Options.OnEvent that hands every event to the dispatcher
// without blocking the reconciler (OnEvent must not block): events queue in a buffer that one goroutine
// drains until ctx ends. A full buffer drops the event and logs it, as a slow notification-controller
// would lose events rather than stall Flux.
func Forwarder(ctx context.Context, d *Dispatcher, log *slog.Logger) func(reconciler.Event) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	queue := make(chan reconciler.Event, 1024)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-queue:
				if err := d.Handle(ctx, FromReconciler(ev)); err != nil {
					log.Warn("alert delivery failed", "err", err)
				}
			}
		}
	}()
	return func(ev reconciler.Event) {
		select {
		case queue <- ev:
		default:
			log.Warn("alert queue full; event dropped", "object", ev.Namespace+"/"+ev.Name, "reason", ev.Reason)
		}
	}
}
