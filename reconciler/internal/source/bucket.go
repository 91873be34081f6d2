package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// BucketRequest is one fetch of a Bucket (source.toolkit.fluxcd.io/v1) with the generic provider.
type BucketRequest struct {
	Endpoint   string // host[:port], no scheme (spec.endpoint)
	Insecure   bool   // plain HTTP (spec.insecure)
	Region     string // spec.region
	BucketName string // spec.bucketName
	Prefix     string // spec.prefix: only objects whose key starts with it
	// AccessKey and SecretKey are the secretRef's accesskey and secretkey; both empty: anonymous.
	AccessKey, SecretKey string
	Ignore               *string // spec.ignore
}

// FetchBucket lists the bucket, and when the index of its objects (key and ETag, after the ignore rules)
// differs from the current artifact's, downloads the objects and publishes them -- source-controller's
// Bucket reconciler for the generic provider, with the same S3 client (minio-go). The revision is
// source-controller's: "sha256:<hex>" of the index written as "<key> <etag>\n" lines in key order
// (source-controller internal/index Digester). The rules are those of a .sourceignore object at the
// bucket's root followed by spec.ignore, with no default exclusions (source-controller fetchEtagIndex
// builds the matcher from those alone); the .sourceignore object is not in the index but is in the
// artifact, as source-controller downloads it into the directory it archives. A bucket that does not
// exist is the error "bucket '<name>' not found". The context bounds the requests (spec.timeout).
// objects is the number of objects in the index of a new artifact (source-controller's NewArtifact event
// counts them).
func (s *Store) FetchBucket(ctx context.Context, key string, req BucketRequest) (art *Artifact, objects int, changed bool, err error) {
	cl, cerr := minio.New(req.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(req.AccessKey, req.SecretKey, ""),
		Region: req.Region, Secure: !req.Insecure,
	})
	if cerr != nil {
		return nil, 0, false, fmt.Errorf("%w: %v", ErrBucketClient, cerr)
	}
	exists, err := cl.BucketExists(ctx, req.BucketName)
	if err != nil {
		return nil, 0, false, fmt.Errorf("failed to confirm existence of '%s' bucket: %w", req.BucketName, err)
	}
	if !exists {
		return nil, 0, false, fmt.Errorf("bucket '%s' not found", req.BucketName)
	}
	ignoreFile, hasIgnoreFile, err := getObject(ctx, cl, req.BucketName, sourceignore.IgnoreFile)
	if err != nil {
		return nil, 0, false, fmt.Errorf("failed to get Etag for '%s' object: %w", sourceignore.IgnoreFile, err)
	}
	var ps []gitignore.Pattern
	if hasIgnoreFile {
		ps = sourceignore.ReadPatterns(bytes.NewReader(ignoreFile.data), nil)
	}
	if req.Ignore != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*req.Ignore), nil)...)
	}
	matcher := sourceignore.NewMatcher(ps)

	index := map[string]string{}
	for o := range cl.ListObjects(ctx, req.BucketName, minio.ListObjectsOptions{Recursive: true, Prefix: req.Prefix}) {
		if o.Err != nil {
			return nil, 0, false, fmt.Errorf("indexation of objects from bucket '%s' failed: listing objects from bucket '%s' failed: %w",
				req.BucketName, req.BucketName, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") || o.Key == sourceignore.IgnoreFile || matcher.Match(strings.Split(o.Key, "/"), false) {
			continue
		}
		index[o.Key] = o.ETag
	}
	config := ignoreConfig(req.Ignore)
	if cur := s.unchanged(key, indexDigest(index), config); cur != nil {
		return cur, 0, false, nil
	}

	// Download every indexed object, pinned to the ETag it has now; one that disappeared since the listing
	// leaves the index, one that changed takes its new ETag (source-controller fetchIndexFiles).
	var files []File
	keys := make([]string, 0, len(index))
	for k := range index {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		obj, found, err := getObject(ctx, cl, req.BucketName, k)
		if err != nil {
			return nil, 0, false, fmt.Errorf("fetch from bucket '%s' failed: failed to get '%s' object: %w", req.BucketName, k, err)
		}
		if !found {
			delete(index, k)
			continue
		}
		index[k] = obj.etag
		files = append(files, bytesFile(k, obj.data))
	}
	if hasIgnoreFile {
		files = append(files, bytesFile(sourceignore.IgnoreFile, ignoreFile.data))
	}
	revision := indexDigest(index)
	if cur := s.unchanged(key, revision, config); cur != nil {
		return cur, 0, false, nil
	}
	a, err := s.publish(key, revision, config, files, nil, false)
	if err != nil {
		return nil, 0, false, err
	}
	return a, len(index), true, nil
}

// ErrBucketClient: the S3 client could not be made from the request (a bad endpoint).
var ErrBucketClient = errors.New("bucket client")

// indexDigest is source-controller's Bucket revision: sha256 over "<key> <etag>\n" for each key in order.
func indexDigest(index map[string]string) string {
	keys := make([]string, 0, len(index))
	for k := range index {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, index[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

type s3Object struct {
	data []byte
	etag string
}

// getObject reads one object (stat, then a GET pinned to the stat's ETag, as source-controller's
// FGetObject); found is false when the key does not exist.
func getObject(ctx context.Context, cl *minio.Client, bucket, key string) (s3Object, bool, error) {
	st, err := cl.StatObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		if isNoSuchKey(err) {
			return s3Object{}, false, nil
		}
		return s3Object{}, false, err
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(st.ETag); err != nil {
		return s3Object{}, false, err
	}
	o, err := cl.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return s3Object{}, false, err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		if isNoSuchKey(err) {
			return s3Object{}, false, nil
		}
		return s3Object{}, false, err
	}
	return s3Object{data: b, etag: st.ETag}, true, nil
}

// isNoSuchKey is source-controller's ObjectIsNotFound: an S3 error response with code NoSuchKey.
func isNoSuchKey(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == "NoSuchKey"
}

func bytesFile(name string, b []byte) File {
	return File{Name: name, Read: func() ([]byte, error) { return b, nil }}
}
