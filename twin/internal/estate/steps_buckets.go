package estate

import (
	"context"
	"path/filepath"

	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// startS3 starts the twin's S3 server (versitygw, twin/s3server) when the spec has buckets: a shared
// service of the pipeline (pipeline.go services), stopped with the twin. A spec without buckets starts
// nothing.
func (e *Estate) startS3(ctx context.Context) error {
	if len(e.spec.Spec.Buckets) == 0 {
		return nil
	}
	srv, err := s3server.Start(ctx, s3server.Options{Dir: filepath.Join(e.stateDir, api.BucketsDir), Logger: e.log.With("component", "s3"),
		Restart: e.backoff, OnRestart: func(r procgroup.Restart) { r.Name = "s3 (versitygw)"; e.recordRestart(r) }})
	if err != nil {
		return err
	}
	e.onStop("s3 server", func(context.Context) error { srv.Stop(); return nil })
	e.s3 = srv
	e.progress("s3: %s (versitygw, posix backend under %s)", srv.URL(), filepath.Join(e.stateDir, api.BucketsDir))
	return nil
}

// publishBuckets publishes each folder of spec.buckets as a bucket of the S3 server, the registry
// placeholder in its files rewritten to the registry's address as in the seeded repositories and pushed
// artifacts.
func (e *Estate) publishBuckets(ctx context.Context) error {
	if e.s3 == nil {
		return nil
	}
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(e.reg.Host())
	for _, b := range e.spec.Spec.Buckets {
		p, err := e.s3.Publish(ctx, b.Name, e.spec.Path(b.Path), func(data []byte) []byte { return bytesReplace(data, from, to) })
		if err != nil {
			return stepErr(api.StepBuckets, b.Name, err)
		}
		e.progress("buckets: %s/%s <- %s (%d objects)", e.s3.URL(), b.Name, b.Path, p.Objects)
	}
	return nil
}

// S3 is the twin's S3 server; nil when the spec has no buckets.
func (e *Estate) S3() *s3server.Server { return e.s3 }
