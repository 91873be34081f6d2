package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNotFound is wrapped when a repository, tag or digest does not exist in the registry.
var ErrNotFound = errors.New("not found in registry")

// Client talks to one registry over plain HTTP with go-containerregistry's crane, the way a CI pipeline
// pushes and a node pulls.
type Client struct {
	host    string
	timeout time.Duration
}

// NewClient returns a client for the registry at host ("127.0.0.1:5000"), spoken to over plain HTTP.
func NewClient(host string) *Client {
	return &Client{host: host, timeout: DefaultProfile().RequestTimeout}
}

// Host is the registry host the client talks to.
func (c *Client) Host() string { return c.host }

// Image describes a manifest stored in the registry.
type Image struct {
	// Ref is the full reference it was published or fetched under, e.g. "127.0.0.1:40123/apps/podinfo:6.5.0".
	Ref string
	// Digest is the manifest digest ("sha256:...").
	Digest string
	// MediaType is the manifest's media type.
	MediaType string
	// Manifest is the raw manifest as the registry served it.
	Manifest []byte
}

// DigestRef is the reference pinned by digest, "host/repo@sha256:...".
func (i Image) DigestRef() string {
	repo := i.Ref
	if at := strings.LastIndex(repo, "@"); at >= 0 {
		repo = repo[:at]
	} else if colon := strings.LastIndex(repo, ":"); colon > strings.LastIndex(repo, "/") {
		repo = repo[:colon]
	}
	return repo + "@" + i.Digest
}

// options bounds ctx by the request timeout when it has no deadline of its own.
func (c *Client) options(ctx context.Context) (context.CancelFunc, []crane.Option) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	return cancel, []crane.Option{crane.Insecure, crane.WithContext(ctx)}
}

func (c *Client) repoRef(repo string) (name.Repository, error) {
	if repo == "" {
		return name.Repository{}, fmt.Errorf("registry %s: repository name is empty; give a path such as apps/podinfo", c.host)
	}
	r, err := name.NewRepository(c.host+"/"+repo, name.Insecure, name.StrictValidation)
	if err != nil {
		return name.Repository{}, fmt.Errorf("registry %s: repository %q: %w; use lower-case path components such as apps/podinfo", c.host, repo, err)
	}
	return r, nil
}

// ref builds "host/repo:tag" or "host/repo@sha256:..." from a tag or a digest.
func (c *Client) ref(repo, tagOrDigest string) (name.Reference, error) {
	r, err := c.repoRef(repo)
	if err != nil {
		return nil, err
	}
	if tagOrDigest == "" {
		return nil, fmt.Errorf("registry %s: repository %s: tag or digest is empty; give a tag such as 6.5.0 or a digest sha256:<hex>", c.host, repo)
	}
	if strings.Contains(tagOrDigest, ":") {
		d, err := name.NewDigest(r.Name()+"@"+tagOrDigest, name.Insecure, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("registry %s: digest %q for %s: %w; give sha256:<64 hex digits>", c.host, tagOrDigest, repo, err)
		}
		return d, nil
	}
	t, err := name.NewTag(r.Name()+":"+tagOrDigest, name.Insecure, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("registry %s: tag %q for %s: %w; tags are up to 128 of [A-Za-z0-9_.-]", c.host, tagOrDigest, repo, err)
	}
	return t, nil
}

// GenerateImage builds a small reproducible linux/amd64 image for repo:tag: one layer with the file
// /etc/hybridtwin/image naming the image. The same repo and tag always give the same digest; different
// tags give different digests.
func GenerateImage(repo, tag string) (v1.Image, error) {
	img, err := crane.Image(map[string][]byte{
		"etc/hybridtwin/image": []byte(repo + ":" + tag + "\n"),
	})
	if err != nil {
		return nil, fmt.Errorf("generate image %s:%s: %w", repo, tag, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("generate image %s:%s: read config: %w", repo, tag, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   repo,
		"org.opencontainers.image.version": tag,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("generate image %s:%s: set config: %w", repo, tag, err)
	}
	return img, nil
}

// Publish pushes a generated image (GenerateImage) to repo:tag and returns what the registry stored.
func (c *Client) Publish(ctx context.Context, repo, tag string) (Image, error) {
	img, err := GenerateImage(repo, tag)
	if err != nil {
		return Image{}, err
	}
	return c.Push(ctx, img, repo, tag)
}

// Push pushes img to repo:tag.
func (c *Client) Push(ctx context.Context, img v1.Image, repo, tag string) (Image, error) {
	ref, err := c.ref(repo, tag)
	if err != nil {
		return Image{}, err
	}
	if _, ok := ref.(name.Tag); !ok {
		return Image{}, fmt.Errorf("registry %s: push %s: %q is a digest; push under a tag", c.host, repo, tag)
	}
	cancel, opts := c.options(ctx)
	defer cancel()
	if err := crane.Push(img, ref.String(), opts...); err != nil {
		return Image{}, c.wrap("push", ref.String(), err)
	}
	d, err := img.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("registry %s: push %s: digest: %w", c.host, ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Image{}, fmt.Errorf("registry %s: push %s: manifest: %w", c.host, ref, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return Image{}, fmt.Errorf("registry %s: push %s: media type: %w", c.host, ref, err)
	}
	return Image{Ref: ref.String(), Digest: d.String(), MediaType: string(mt), Manifest: raw}, nil
}

// Tags lists repo's tags, sorted.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := c.repoRef(repo)
	if err != nil {
		return nil, err
	}
	cancel, opts := c.options(ctx)
	defer cancel()
	tags, err := crane.ListTags(r.String(), opts...)
	if err != nil {
		return nil, c.wrap("list tags of", r.String(), err)
	}
	sort.Strings(tags)
	return tags, nil
}

// Catalog lists the registry's repositories, sorted.
func (c *Client) Catalog(ctx context.Context) ([]string, error) {
	cancel, opts := c.options(ctx)
	defer cancel()
	repos, err := crane.Catalog(c.host, opts...)
	if err != nil {
		return nil, c.wrap("list the catalog of", c.host, err)
	}
	sort.Strings(repos)
	return repos, nil
}

// Manifest fetches repo's manifest by tag or by digest ("sha256:..."). When fetched by digest, the
// content is verified against it.
func (c *Client) Manifest(ctx context.Context, repo, tagOrDigest string) (Image, error) {
	ref, err := c.ref(repo, tagOrDigest)
	if err != nil {
		return Image{}, err
	}
	cancel, opts := c.options(ctx)
	defer cancel()
	desc, err := crane.Get(ref.String(), opts...)
	if err != nil {
		return Image{}, c.wrap("get manifest", ref.String(), err)
	}
	return Image{Ref: ref.String(), Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Manifest: desc.Manifest}, nil
}

// Delete removes a tag (the manifest stays reachable by digest) or, given a digest, the manifest and every
// tag pointing at it. The registry must run with Profile.DeleteEnabled.
func (c *Client) Delete(ctx context.Context, repo, tagOrDigest string) error {
	ref, err := c.ref(repo, tagOrDigest)
	if err != nil {
		return err
	}
	cancel, opts := c.options(ctx)
	defer cancel()
	if err := crane.Delete(ref.String(), opts...); err != nil {
		return c.wrap("delete", ref.String(), err)
	}
	return nil
}

// wrap names the operation and maps the registry's "unknown" answers to ErrNotFound.
func (c *Client) wrap(op, ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("registry: %s %s: %w: %w", op, ref, ErrNotFound, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("registry: %s %s: %w: %w", op, ref, ErrNotFound, err)
			case transport.UnsupportedErrorCode:
				return fmt.Errorf("registry: %s %s: %w; the registry refuses the operation (deleting needs Profile.DeleteEnabled)", op, ref, err)
			}
		}
	}
	return fmt.Errorf("registry: %s %s: %w", op, ref, err)
}
