package fluxartifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotation keys of a `flux push artifact` artifact (fluxcd/pkg/oci meta.go:
// CanonicalConfigMediaType, CanonicalContentMediaType, SourceAnnotation, RevisionAnnotation,
// CreatedAnnotation; the keys are the OCI image-spec's pre-defined annotations). source-controller's
// OCIRepository selects the content layer by ContentMediaType unless spec.layerSelector says otherwise.
const (
	ConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	ContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"

	SourceAnnotation   = "org.opencontainers.image.source"
	RevisionAnnotation = "org.opencontainers.image.revision"
	CreatedAnnotation  = "org.opencontainers.image.created"
)

// ErrNotRegular is returned by ReadDir for a folder entry that is neither a file nor a folder (a
// symbolic link, a socket): an artifact holds files and folders only.
var ErrNotRegular = errors.New("not a regular file or folder")

// Meta is what `flux push artifact --source --revision` records on the manifest.
type Meta struct {
	// Source is where the files came from (a Git URL or file:// path). Empty leaves the annotation out.
	Source string
	// Revision is the source revision (`main@sha1:<hash>`). Empty records "sha256:<hex>" of the layer,
	// so the revision changes exactly when the content does.
	Revision string
	// Created is an RFC 3339 time. Empty leaves the annotation out, which keeps digests reproducible.
	Created string
}

// Build packs files (slash-separated paths relative to the artifact's root -> content) into a Flux
// artifact. The tarball lists every parent folder before its files, in sorted order, with mode 0755 for
// folders and 0644 for files and no timestamps, so the same files give the same digest.
func Build[T ~string | ~[]byte](files map[string]T, m Meta) (v1.Image, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		if n == "" || path.IsAbs(n) || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
			return nil, fmt.Errorf("pack Flux artifact: file name %q must be a clean relative slash path", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	var writeDir func(d string) error
	writeDir = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := writeDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	for _, n := range names {
		if err := writeDir(path.Dir(n)); err != nil {
			return nil, fmt.Errorf("pack Flux artifact: %s: %w", n, err)
		}
		data := []byte(files[n])
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, fmt.Errorf("pack Flux artifact: %s: %w", n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("pack Flux artifact: %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack Flux artifact: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("pack Flux artifact: %w", err)
	}

	annotations := map[string]string{RevisionAnnotation: m.Revision}
	if m.Revision == "" {
		annotations[RevisionAnnotation] = fmt.Sprintf("sha256:%x", sha256.Sum256(buf.Bytes()))
	}
	if m.Source != "" {
		annotations[SourceAnnotation] = m.Source
	}
	if m.Created != "" {
		annotations[CreatedAnnotation] = m.Created
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	img = mutate.Annotations(img, annotations).(v1.Image)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(buf.Bytes(), ContentMediaType)})
	if err != nil {
		return nil, fmt.Errorf("pack Flux artifact: %w", err)
	}
	return img, nil
}

// ReadDir reads the files under dir for Build, as `flux push artifact --path=dir` takes them: paths
// relative to dir; hidden files and folders (.git and every other dot entry) and empty folders left out.
// rewrite, if not nil, is applied to every file's content (the twin replaces its registry placeholder). A
// symbolic link or other special file is an error wrapping ErrNotRegular.
func ReadDir(dir string, rewrite func([]byte) []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a folder", dir)
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %w; an artifact holds files and folders only", p, ErrNotRegular)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rewrite != nil {
			data = rewrite(data)
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s for a Flux artifact: %w", dir, err)
	}
	return files, nil
}
