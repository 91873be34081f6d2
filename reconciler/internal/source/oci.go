package source

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// OCIPrefix starts an OCIRepository URL (source-controller api/v1 OCIRepositoryPrefix).
const OCIPrefix = "oci://"

// DefaultOCITag is pulled when an OCIRepository has no ref (api/v1 OCIRepositoryRef.Tag: "defaults to
// latest"; go-containerregistry name.DefaultTag).
const DefaultOCITag = name.DefaultTag

// Errors callers can test for; they match source-controller's failure reasons.
var (
	// ErrOCIPull: the reference could not be resolved or the artifact not pulled (OCIArtifactPullFailed).
	ErrOCIPull = errors.New("OCI artifact pull failed")
	// ErrOCILayer: no layer matched, or its content could not be extracted (OCIArtifactLayerOperationFailed).
	ErrOCILayer = errors.New("OCI artifact layer operation failed")
)

// OCIRef selects the artifact, with source-controller's precedence: Digest over SemVer over Tag.
type OCIRef struct {
	Digest, SemVer, SemverFilter, Tag string
}

// OCIAuth is a registry login, as read from a kubernetes.io/dockerconfigjson Secret.
type OCIAuth struct {
	Username, Password string
}

// OCIRequest is one pull of an OCIRepository.
type OCIRequest struct {
	URL string // oci://host[:port]/repository, without a tag
	Ref OCIRef
	// LayerMediaType selects the first layer of this media type; empty selects the first layer.
	LayerMediaType string
	// Copy is the layer operation "copy": source-controller stores the layer as it is, so no ignore rule
	// applies to its files. Otherwise ("extract") the files go through the ignore rules like a Git tree.
	Copy     bool
	Insecure bool // plain HTTP (spec.insecure)
	Auth     *OCIAuth
	Ignore   *string
}

// FetchOCI resolves the reference, and when it names an artifact other than the current one (or the
// layer selection or ignore rules changed) pulls it, extracts the selected layer -- a gzipped tarball
// of manifests, as `flux push artifact` makes -- and publishes it. The revision is Flux's:
// "<tag>@sha256:<manifest digest>", or "sha256:<digest>" for a digest reference. The artifact's
// Metadata holds the manifest's annotations. The context bounds the registry requests (spec.timeout).
func (s *Store) FetchOCI(ctx context.Context, key string, req OCIRequest) (*Artifact, bool, error) {
	repo, err := ociRepository(req)
	if err != nil {
		return nil, false, err
	}
	opts := []remote.Option{remote.WithContext(ctx)}
	if a := req.Auth; a != nil && (a.Username != "" || a.Password != "") {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: a.Username, Password: a.Password}))
	}
	ref, err := ociReference(repo, req.Ref, opts)
	if err != nil {
		return nil, false, err
	}
	revision, digest, err := ociRevision(ref, opts)
	if err != nil {
		return nil, false, fmt.Errorf("%w: resolve '%s': %v%s", ErrOCIPull, ref, err, insecureHint(err, req))
	}
	config := ignoreConfig(req.Ignore) + "\x00layer:" + req.LayerMediaType + fmt.Sprintf("\x00copy:%v", req.Copy)
	if cur := s.unchanged(key, revision, config); cur != nil {
		return cur, false, nil
	}
	img, err := remote.Image(repo.Digest(digest.String()), opts...)
	if err != nil {
		return nil, false, fmt.Errorf("%w: pull '%s': %v", ErrOCIPull, req.URL, err)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, false, fmt.Errorf("%w: parse the manifest of '%s': %v", ErrOCILayer, ref, err)
	}
	files, err := layerFiles(img, req.LayerMediaType)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrOCILayer, ref, err)
	}
	a, err := s.publish(key, revision, config, files, req.Ignore, !req.Copy)
	if err != nil {
		return nil, false, err
	}
	a.Metadata = manifest.Annotations
	return a, true, nil
}

// ociRepository parses the URL as source-controller does: oci:// prefix, a repository, no tag.
func ociRepository(req OCIRequest) (name.Repository, error) {
	if !strings.HasPrefix(req.URL, OCIPrefix) {
		return name.Repository{}, fmt.Errorf("%w: URL %q must start with %s", ErrOCIPull, req.URL, OCIPrefix)
	}
	s := strings.TrimPrefix(req.URL, OCIPrefix)
	var nopts []name.Option
	if req.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(s, append(nopts, name.StrictValidation)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: URL %q is not a repository reference (a tag belongs in spec.ref.tag): %v",
			ErrOCIPull, req.URL, err)
	}
	return repo, nil
}

// ociReference applies the ref precedence; a semver range lists the repository's tags.
func ociReference(repo name.Repository, r OCIRef, opts []remote.Option) (name.Reference, error) {
	switch {
	case r.Digest != "":
		if _, err := gcrv1.NewHash(r.Digest); err != nil {
			return nil, fmt.Errorf("%w: spec.ref.digest %q must be sha256:<64 hex digits>: %v", ErrOCIPull, r.Digest, err)
		}
		return repo.Digest(r.Digest), nil
	case r.SemVer != "":
		tag, err := latestSemVerTag(repo, r, opts)
		if err != nil {
			return nil, err
		}
		return repo.Tag(tag), nil
	case r.Tag != "":
		return repo.Tag(r.Tag), nil
	}
	return repo.Tag(DefaultOCITag), nil
}

func latestSemVerTag(repo name.Repository, r OCIRef, opts []remote.Option) (string, error) {
	constraint, err := semver.NewConstraint(r.SemVer)
	if err != nil {
		return "", fmt.Errorf("%w '%s' in spec.ref.semver: %v", ErrInvalidSemVer, r.SemVer, err)
	}
	var filter *regexp.Regexp
	if r.SemverFilter != "" {
		if filter, err = regexp.Compile(r.SemverFilter); err != nil {
			return "", fmt.Errorf("%w: spec.ref.semverFilter %q is not a regular expression: %v", ErrOCIPull, r.SemverFilter, err)
		}
	}
	tags, err := remote.List(repo, opts...)
	if err != nil {
		return "", fmt.Errorf("%w: list tags of '%s': %v", ErrOCIPull, repo, err)
	}
	type cand struct {
		v   *semver.Version
		tag string
	}
	var cands []cand
	for _, t := range tags {
		if filter != nil && !filter.MatchString(t) {
			continue
		}
		if v, err := semver.NewVersion(t); err == nil && constraint.Check(v) {
			cands = append(cands, cand{v, t})
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%w: no tag of '%s' matches semver '%s'", ErrOCIPull, repo, r.SemVer)
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].v.Equal(cands[j].v) {
			return cands[i].v.GreaterThan(cands[j].v)
		}
		return cands[i].tag < cands[j].tag
	})
	return cands[0].tag, nil
}

// ociRevision asks the registry for the manifest digest (HEAD, falling back to GET).
func ociRevision(ref name.Reference, opts []remote.Option) (string, gcrv1.Hash, error) {
	if d, ok := ref.(name.Digest); ok {
		h, err := gcrv1.NewHash(d.DigestStr())
		return h.String(), h, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return "", gcrv1.Hash{}, fmt.Errorf("unsupported reference %T", ref)
	}
	desc, err := remote.Head(tag, opts...)
	if err != nil {
		d, gerr := remote.Get(tag, opts...)
		if gerr != nil {
			return "", gcrv1.Hash{}, gerr
		}
		desc = &d.Descriptor
	}
	return tag.TagStr() + "@" + desc.Digest.String(), desc.Digest, nil
}

func insecureHint(err error, req OCIRequest) string {
	if !req.Insecure && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return "; the registry speaks plain HTTP: set spec.insecure: true"
	}
	return ""
}

// layerFiles selects the layer and reads the files of its gzipped tarball. Like source-controller
// (tar.Untar WithSkipSymlinks), only regular files are kept; a name leaving the root is an error.
func layerFiles(img gcrv1.Image, mediaType string) ([]File, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read the layers: %v", err)
	}
	if len(layers) == 0 {
		return nil, errors.New("the artifact has no layers")
	}
	layer := layers[0]
	if mediaType != "" {
		layer = nil
		for i, l := range layers {
			mt, err := l.MediaType()
			if err != nil {
				return nil, fmt.Errorf("read the media type of layer %d: %v", i, err)
			}
			if string(mt) == mediaType {
				layer = l
				break
			}
		}
		if layer == nil {
			return nil, fmt.Errorf("no layer has media type '%s' (spec.layerSelector.mediaType)", mediaType)
		}
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("read the layer: %v", err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("the layer is not a gzipped tarball: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	var files []File
	at := map[string]int{} // a name written twice keeps its last content, as extracting does
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the layer's tarball: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue // directories are implied by their files; links are skipped
		}
		n := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if n == "." || n == ".." || strings.HasPrefix(n, "../") {
			return nil, fmt.Errorf("the layer's tarball has an entry %q outside its root", h.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s from the layer: %v", h.Name, err)
		}
		f := File{Name: n, Read: func() ([]byte, error) { return b, nil }}
		if i, ok := at[n]; ok {
			files[i] = f
			continue
		}
		at[n] = len(files)
		files = append(files, f)
	}
	return files, nil
}
