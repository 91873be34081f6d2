// Package source fetches the Flux sources the reconciler supports and turns a resolved revision into
// an artifact: the tree at that revision, written once to a directory on disk, with source-controller's
// exclusion rules (.sourceignore files, spec.ignore) applied and Flux's revision format.
//
//   - Git (GitRepository) over HTTP(S) with go-git: "main@sha1:<sha>", "v1.2.0@sha1:<sha>", "sha1:<sha>".
//   - OCI artifacts (OCIRepository) with go-containerregistry: the selected layer of an artifact as
//     `flux push artifact` makes it (a gzipped tarball of manifests): "<tag>@sha256:<digest>" or
//     "sha256:<digest>".
//   - Files a caller fetched itself (Publish): the Helm kinds store a HelmRepository's index.yaml and a
//     HelmChart's packaged chart this way (reconciler/internal/helm fetches them).
//
// It owns the local clones and the artifact directories under one work directory; artifacts are
// reference-counted so a build reading an old revision is never pulled from under it.
// It imports go-git, go-containerregistry and fluxcd/pkg/sourceignore, never the rest of the project.
package source
