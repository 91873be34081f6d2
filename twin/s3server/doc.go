// Package s3server runs a real S3-compatible object store for the twin's Flux Bucket sources: versitygw
// (github.com/versity/versitygw, Apache-2.0) with its posix backend, a pinned binary from the tool cache
// (tools/toolcache Versitygw), on a loopback port the OS chooses, with an access key and secret generated
// for each server. Buckets are folders under Options.Dir; objects are written through the S3 API (minio-go,
// the client source-controller uses for the generic provider), so the server computes their ETags as it
// would for any client.
//
// It owns the server's lifecycle (Start, Stop), its limits (Profile) and the publishing helpers: Publish
// makes a bucket hold exactly the files of a folder, Put and Remove change one object.
//
// It must not import other twin packages but twin/internal/procgroup, nor reconciler/, scenarios/ or cmd/:
// the twin composes it.
package s3server
