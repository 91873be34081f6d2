package s3server

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/minio/minio-go/v7"
)

// bucketName is S3's rule for a general purpose bucket name: 3-63 lowercase letters, digits, dots and
// hyphens, starting and ending with a letter or digit (Amazon S3 User Guide, "General purpose bucket naming
// rules").
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ValidBucketName reports whether name follows S3's bucket naming rules.
func ValidBucketName(name string) bool { return bucketName.MatchString(name) }

// Published says what Publish did.
type Published struct {
	Bucket  string
	Objects int // objects the bucket holds now
	Removed int // objects removed because the folder no longer has them
}

// Publish makes bucket hold exactly the regular files below dir, as objects keyed by their slash path
// relative to dir (creating the bucket if missing, removing objects whose file is gone); rewrite, if not
// nil, changes each file's content on the way (the twin rewrites its registry placeholder). Every file is
// uploaded, so the server sets each object's ETag; symbolic links and other non-regular files, and .git
// folders, are skipped.
func (s *Server) Publish(ctx context.Context, bucket, dir string, rewrite func([]byte) []byte) (Published, error) {
	out := Published{Bucket: bucket}
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		return out, err
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return out, fmt.Errorf("s3server: publish %s as bucket %q: not a folder: %w", dir, bucket, ErrInvalidOptions)
	}
	keep := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rewrite != nil {
			b = rewrite(b)
		}
		key := filepath.ToSlash(rel)
		keep[key] = true
		return s.Put(ctx, bucket, key, b)
	})
	if err != nil {
		return out, fmt.Errorf("s3server: publish %s as bucket %q: %w", dir, bucket, err)
	}
	keys, err := s.Keys(ctx, bucket)
	if err != nil {
		return out, err
	}
	for _, k := range keys {
		if keep[k] {
			continue
		}
		if err := s.Remove(ctx, bucket, k); err != nil {
			return out, err
		}
		out.Removed++
	}
	out.Objects = len(keep)
	return out, nil
}

// EnsureBucket creates bucket unless it exists.
func (s *Server) EnsureBucket(ctx context.Context, bucket string) error {
	if !ValidBucketName(bucket) {
		return fmt.Errorf("s3server: bucket name %q: %w; use 3-63 lowercase letters, digits, dots and hyphens", bucket, ErrInvalidOptions)
	}
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("s3server: check bucket %q: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.profile.Region}); err != nil {
		return fmt.Errorf("s3server: create bucket %q: %w", bucket, err)
	}
	return nil
}

// Put uploads one object.
func (s *Server) Put(ctx context.Context, bucket, key string, data []byte) error {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	if _, err := s.client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("s3server: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Remove deletes one object.
func (s *Server) Remove(ctx context.Context, bucket, key string) error {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	if err := s.client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3server: remove %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Keys lists a bucket's object keys, sorted.
func (s *Server) Keys(ctx context.Context, bucket string) ([]string, error) {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	var keys []string
	for o := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3server: list bucket %q: %w", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys, nil
}

// Buckets lists the server's buckets, sorted.
func (s *Server) Buckets(ctx context.Context) ([]string, error) {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	bs, err := s.client.ListBuckets(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3server: list buckets: %w", err)
	}
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Name)
	}
	slices.Sort(out)
	return out, nil
}

func (s *Server) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.profile.RequestTimeout)
}
