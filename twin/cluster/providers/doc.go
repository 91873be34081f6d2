// Package providers picks the workload-cluster provider a twin spec names (spec.provider): embedded (the
// default) or kind. It is the one place that knows both implementations; everything else holds a
// cluster.Provider.
//
// It imports twin/cluster and the two providers; nothing else of the twin.
package providers
