// Package gitsource fetches Git repositories over HTTP(S) with go-git and turns a resolved revision
// into an artifact: the repository tree at that commit, written once to a directory on disk, with the
// source-controller's exclusion rules (.sourceignore files, spec.ignore) applied, named by Flux's revision
// format ("main@sha1:<sha>", "v1.2.0@sha1:<sha>", "sha1:<sha>").
//
// It owns the local clones and the artifact directories under one work directory; artifacts are
// reference-counted so a build reading an old revision is never pulled from under it.
// It imports go-git and fluxcd/pkg/sourceignore, never the rest of the project.
package gitsource
