package build

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// overlayFS reads the shared artifact through a root-confined disk filesystem and adds a few files held
// in memory (the generated or amended kustomization.yaml), so a build never writes to, or copies, the
// artifact. It replaces fluxcd/pkg/kustomize/filesys.MakeFsInMemory, whose memory layer (kyaml's fsnode)
// refuses to create directories whose names have characters outside [a-zA-Z0-9-_.:] -- and the
// artifact's absolute path is under the caller's work directory, which may have any name.
type overlayFS struct {
	disk  filesys.FileSystem
	files map[string][]byte // absolute, cleaned path -> content
}

var errReadOnly = errors.New("build filesystem is read-only outside its overlay files")

func newOverlayFS(disk filesys.FileSystem) *overlayFS {
	return &overlayFS{disk: disk, files: map[string][]byte{}}
}

func (o *overlayFS) key(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

func (o *overlayFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (o *overlayFS) Mkdir(string) error                  { return errReadOnly }
func (o *overlayFS) MkdirAll(string) error               { return errReadOnly }
func (o *overlayFS) RemoveAll(string) error              { return errReadOnly }

func (o *overlayFS) WriteFile(p string, data []byte) error {
	o.files[o.key(p)] = bytes.Clone(data)
	return nil
}

func (o *overlayFS) Open(p string) (filesys.File, error) {
	if b, ok := o.files[o.key(p)]; ok {
		return &memFile{Reader: bytes.NewReader(b), name: filepath.Base(p), size: int64(len(b))}, nil
	}
	return o.disk.Open(p)
}

func (o *overlayFS) IsDir(p string) bool {
	if _, ok := o.files[o.key(p)]; ok {
		return false
	}
	return o.disk.IsDir(p)
}

func (o *overlayFS) ReadDir(p string) ([]string, error) {
	names, err := o.disk.ReadDir(p)
	if err != nil {
		return nil, err
	}
	dir := o.key(p)
	for f := range o.files {
		if filepath.Dir(f) == dir && !slices.Contains(names, filepath.Base(f)) {
			names = append(names, filepath.Base(f))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (o *overlayFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, ok := o.files[o.key(p)]; ok {
		d, _, err := o.disk.CleanedAbs(filepath.Dir(p))
		return d, filepath.Base(p), err
	}
	return o.disk.CleanedAbs(p)
}

func (o *overlayFS) Exists(p string) bool {
	if _, ok := o.files[o.key(p)]; ok {
		return true
	}
	return o.disk.Exists(p)
}

func (o *overlayFS) Glob(pattern string) ([]string, error) {
	out, err := o.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	for f := range o.files {
		if ok, _ := filepath.Match(pattern, f); ok && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (o *overlayFS) ReadFile(p string) ([]byte, error) {
	if b, ok := o.files[o.key(p)]; ok {
		return bytes.Clone(b), nil
	}
	data, err := o.disk.ReadFile(p)
	if err != nil {
		return nil, err
	}
	// Files kustomize loads from outside spec.path (resources: ../base) get the same guard.
	if err := checkAliasesIn(p, data); err != nil {
		return nil, err
	}
	return data, nil
}

func (o *overlayFS) Walk(p string, fn filepath.WalkFunc) error {
	root := o.key(p)
	seen := map[string]bool{}
	err := o.disk.Walk(p, func(path string, info os.FileInfo, err error) error {
		seen[o.key(path)] = true
		if b, ok := o.files[o.key(path)]; ok && err == nil {
			info = memInfo{name: filepath.Base(path), size: int64(len(b))}
		}
		return fn(path, info, err)
	})
	if err != nil {
		return err
	}
	for f, b := range o.files {
		if !seen[f] && (f == root || len(f) > len(root) && f[:len(root)+1] == root+string(filepath.Separator)) {
			if err := fn(f, memInfo{name: filepath.Base(f), size: int64(len(b))}, nil); err != nil && !errors.Is(err, filepath.SkipDir) {
				return err
			}
		}
	}
	return nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Write([]byte) (int, error)  { return 0, errReadOnly }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Stat() (os.FileInfo, error) { return memInfo{name: f.name, size: f.size}, nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
