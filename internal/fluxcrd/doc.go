// Package fluxcrd installs Flux's CustomResourceDefinitions into a cluster: the CRDs of the pinned
// source-controller and kustomize-controller modules and of helm-controller, notification-controller and
// the image controllers of the same Flux release (their config/crd/bases, copied into the tool cache
// without building the controllers), server-side applied and waited on until Established. Every workload
// cluster of the twin gets them whichever engine runs, as the Arc Flux extension installs them, so Flux's
// objects live in the cluster and kubectl and the flux CLI read them.
//
// It imports client-go and tools/toolcache, nothing else of the project.
package fluxcrd
