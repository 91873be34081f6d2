package reconciler

import (
	"time"
)

// Kind names the reconciler's object kinds in events, metrics and RequestReconcile.
type Kind string

// The kinds.
const (
	KindGitRepository  Kind = "GitRepository"
	KindOCIRepository  Kind = "OCIRepository"
	KindBucket         Kind = "Bucket"
	KindHelmRepository Kind = "HelmRepository"
	KindHelmChart      Kind = "HelmChart"
	KindKustomization  Kind = "Kustomization"
	KindHelmRelease    Kind = "HelmRelease"
)

// EventType is Kubernetes' event type.
type EventType string

// Event types.
const (
	EventNormal  EventType = "Normal"
	EventWarning EventType = "Warning"
)

// Event is what Flux would emit as a Kubernetes Event (and forward to notification-controller).
type Event struct {
	Time      time.Time
	Cluster   string
	Kind      Kind
	Namespace string
	Name      string
	Type      EventType
	Reason    string
	Message   string
	Revision  string
}

// Correction records one drift correction: which object of which Kustomization, which declared fields
// had drifted (JSON pointers; empty when the object was deleted and recreated), and how long it took
// from the watch event to the corrected object being accepted by the API server.
type Correction struct {
	Cluster       string
	Kustomization string // namespace/name
	Object        string // Kind/namespace/name
	Action        string // "configured" or "created" (recreated after deletion)
	Fields        []string
	DetectedAt    time.Time
	CorrectedAt   time.Time
	Latency       time.Duration
}
