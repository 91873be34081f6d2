package converge

import (
	"context"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin"
)

// localStatus reads a twin of this process.
type localStatus struct{ t *twin.Twin }

func (l localStatus) GitOps(ctx context.Context) ([]layout.ConfigStatus, error) {
	st, err := l.t.Status(ctx)
	if err != nil {
		return nil, err
	}
	return configStatuses(st), nil
}

// remoteStatus reads a running twin over its control socket.
type remoteStatus struct{ r *twin.Remote }

func (r remoteStatus) GitOps(ctx context.Context) ([]layout.ConfigStatus, error) {
	st, err := r.r.Status(ctx)
	if err != nil {
		return nil, err
	}
	return configStatuses(st), nil
}

var (
	_ layout.StatusSource = localStatus{}
	_ layout.StatusSource = remoteStatus{}
)

// configStatuses is the twin's status of its GitOps configurations as WaitConverge reads it.
func configStatuses(st *twin.Status) []layout.ConfigStatus {
	out := make([]layout.ConfigStatus, 0, len(st.GitOps))
	for _, g := range st.GitOps {
		cs := layout.ConfigStatus{Cluster: g.Cluster, Name: g.Name, Compliance: g.ComplianceState,
			Commit: g.SyncedCommit, Message: g.Message}
		for _, k := range g.Kustomizations {
			cs.Kustomizations = append(cs.Kustomizations, layout.KustomizationStatus{Name: k.Name, Compliance: k.ComplianceState, Message: k.Message,
				Namespace: k.Namespace, AppliedBy: k.AppliedBy})
		}
		out = append(out, cs)
	}
	return out
}
