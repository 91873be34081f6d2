package fluxartifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// entry is one tarball header as the test compares it.
type entry struct {
	Name string
	Type byte
	Mode int64
	Data string
}

// pulled fetches repo:tag back from reg over the distribution API, as source-controller does, and returns
// the manifest annotations, the config and layer media types and the layer's tarball entries.
func pulled(t *testing.T, reg *registry.Registry, repo, tag string) (map[string]string, string, []string, []entry) {
	t.Helper()
	ref, err := name.ParseReference(reg.Host()+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var entries []entry
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, string(mt))
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatalf("layer is not gzip: %v", err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if !h.ModTime.IsZero() && h.ModTime.Unix() != 0 {
				t.Errorf("%s has a timestamp %v; entries carry none so digests are reproducible", h.Name, h.ModTime)
			}
			entries = append(entries, entry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Data: string(data)})
		}
		_ = rc.Close()
	}
	if string(m.MediaType) != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %q, want the OCI image manifest", m.MediaType)
	}
	return m.Annotations, string(m.Config.MediaType), types, entries
}

func startRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg, err := registry.Start(context.Background(), registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Stop(context.Background()); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	return reg
}

// A folder read with ReadDir and packed with Build, pushed to the twin's real registry and pulled back:
// Flux's media types, the source and revision annotations, every parent folder before its files, hidden
// entries left out, the rewrite applied; the same folder gives the same digest, a change a new one.
func TestBuildFromFolderThroughARegistry(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apps/base/ns.yaml", "kind: Namespace\n")
	write("apps/settings.yaml", "image: REGISTRY/podinfo\n")
	write(".git/HEAD", "ref: refs/heads/main\n")
	write("apps/.hidden.yaml", "kind: Secret\n")
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	rewrite := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("REGISTRY"), []byte(reg.Host())) }
	files, err := fluxartifact.ReadDir(dir, rewrite)
	if err != nil {
		t.Fatal(err)
	}
	img, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file:///specs/twin.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	repo := "manifests/" + "build-from-folder"
	pushed, err := reg.Client().Push(context.Background(), img, repo, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}

	annotations, config, layers, entries := pulled(t, reg, repo, "1.0.0")
	if config != fluxartifact.ConfigMediaType {
		t.Errorf("config media type %q, want %q", config, fluxartifact.ConfigMediaType)
	}
	if diff := cmp.Diff([]string{fluxartifact.ContentMediaType}, layers); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
	if annotations[fluxartifact.SourceAnnotation] != "file:///specs/twin.yaml" {
		t.Errorf("source annotation %q", annotations[fluxartifact.SourceAnnotation])
	}
	if rev := annotations[fluxartifact.RevisionAnnotation]; len(rev) != len("sha256:")+64 || rev[:7] != "sha256:" {
		t.Errorf("revision annotation %q, want sha256:<hex of the layer> when Meta.Revision is empty", rev)
	}
	if _, ok := annotations[fluxartifact.CreatedAnnotation]; ok {
		t.Errorf("created annotation set without Meta.Created: %v", annotations)
	}
	want := []entry{
		{Name: "apps/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "apps/base/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "apps/base/ns.yaml", Type: tar.TypeReg, Mode: 0o644, Data: "kind: Namespace\n"},
		{Name: "apps/settings.yaml", Type: tar.TypeReg, Mode: 0o644, Data: "image: " + reg.Host() + "/podinfo\n"},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}

	// Reproducible: the same folder packs to the same digest; a changed file to another.
	again, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file:///specs/twin.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := again.Digest(); err != nil || d.String() != pushed.Digest {
		t.Errorf("same folder packed to %v (err %v), want %s", d, err, pushed.Digest)
	}
	write("apps/settings.yaml", "image: changed\n")
	files, err = fluxartifact.ReadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file:///specs/twin.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := changed.Digest(); err != nil || d.String() == pushed.Digest {
		t.Errorf("changed folder packed to %v (err %v), the old digest", d, err)
	}
}

// Files given in memory (the tests' form): the caller's source, revision and created time on the
// manifest, each parent folder once, and the content intact.
func TestBuildFromMemory(t *testing.T) {
	reg := startRegistry(t)
	files := map[string]string{
		"apps/ns.yaml":            "kind: Namespace\n",
		"apps/team/settings.yaml": "kind: ConfigMap\n",
		"README.md":               "not a manifest\n",
	}
	img, err := fluxartifact.Build(files, fluxartifact.Meta{
		Source: "https://example.com/apps.git", Revision: "main@sha1:0123", Created: "2026-11-21T00:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	repo := "manifests/build-from-memory"
	if _, err := reg.Client().Push(context.Background(), img, repo, "v1"); err != nil {
		t.Fatal(err)
	}
	annotations, _, _, entries := pulled(t, reg, repo, "v1")
	if diff := cmp.Diff(map[string]string{
		fluxartifact.SourceAnnotation:   "https://example.com/apps.git",
		fluxartifact.RevisionAnnotation: "main@sha1:0123",
		fluxartifact.CreatedAnnotation:  "2026-11-21T00:00:00Z",
	}, annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	want := []entry{
		{Name: "README.md", Type: tar.TypeReg, Mode: 0o644, Data: "not a manifest\n"},
		{Name: "apps/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "apps/ns.yaml", Type: tar.TypeReg, Mode: 0o644, Data: "kind: Namespace\n"},
		{Name: "apps/team/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "apps/team/settings.yaml", Type: tar.TypeReg, Mode: 0o644, Data: "kind: ConfigMap\n"},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// Bad input is refused with the name or path that is wrong.
func TestBadInput(t *testing.T) {
	for _, n := range []string{"", "/abs.yaml", "../up.yaml", "apps/../x.yaml", "apps//x.yaml", "apps/"} {
		if _, err := fluxartifact.Build(map[string]string{n: "x"}, fluxartifact.Meta{}); err == nil {
			t.Errorf("Build accepted file name %q", n)
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "real.yaml"), []byte("kind: Namespace\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.yaml", filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := fluxartifact.ReadDir(dir, nil)
	if !errors.Is(err, fluxartifact.ErrNotRegular) {
		t.Errorf("ReadDir with a symlink: %v, want ErrNotRegular", err)
	}
	if err == nil || !strings.Contains(err.Error(), "link.yaml") {
		t.Errorf("error %v does not name the link", err)
	}
	if _, err := fluxartifact.ReadDir(filepath.Join(dir, "real.yaml"), nil); err == nil {
		t.Error("ReadDir of a file succeeded, want an error")
	}
	if _, err := fluxartifact.ReadDir(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("ReadDir of a missing folder succeeded, want an error")
	}
}
