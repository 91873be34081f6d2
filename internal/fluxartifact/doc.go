// Package fluxartifact packs files into an OCI artifact of the shape `flux push artifact` makes, so the
// twin (spec.artifacts) and the tests of the reconciler, the Arc agent and the real-Flux target push the
// same thing source-controller's OCIRepository and the twin's reconciler read.
//
// The format follows Flux's own packer, fluxcd/pkg/oci (meta.go and client/build.go, used by
// `flux push artifact`; RFC-0003 "Flux OCI support for Kubernetes manifests"): an OCI image manifest
// whose config has media type application/vnd.cncf.flux.config.v1+json and whose one layer, media type
// application/vnd.cncf.flux.content.v1.tar+gzip, is a gzipped tarball of the pushed folder, with the
// org.opencontainers.image.source / .revision (and optionally .created) annotations on the manifest.
// Unlike Flux, entries carry no timestamps and owners and .created is left out unless given, so the same
// files always give the same digest.
//
// It owns building the image only; pushing goes through the caller's registry client
// (twin/registry.Client.Push, go-containerregistry). It imports only go-containerregistry and the standard
// library, so reconciler/ (which must never import twin/) may use it as well as twin/.
package fluxartifact
