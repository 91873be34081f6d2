package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/fluxcd/pkg/sourceignore"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// DefaultBranch is checked out when a GitRepository has no ref (source-controller api/v1
// GitRepositoryRef: "Branch to check out, defaults to 'master' if no other field is defined").
const DefaultBranch = "master"

// Errors callers can test for.
var (
	ErrAuth          = errors.New("git authentication failed")
	ErrRefNotFound   = errors.New("git reference not found")
	ErrInvalidSemVer = errors.New("invalid semver range")
)

// Ref is the checkout reference, with source-controller's precedence: Commit over Name over SemVer
// over Tag over Branch.
type Ref struct {
	Branch, Tag, SemVer, Name, Commit string
}

// Auth holds HTTP credentials, as read from the GitRepository's secretRef (keys "username"/"password",
// "bearerToken", "ca.crt").
type Auth struct {
	Username, Password string
	BearerToken        string
	CABundle           []byte
}

// Request is one fetch.
type Request struct {
	URL    string
	Ref    Ref
	Auth   *Auth
	Ignore *string // spec.ignore, appended to the default and .sourceignore patterns
}

// Artifact is a revision's tree on disk. Hold it with Acquire while reading Dir.
type Artifact struct {
	Revision string // Flux revision, e.g. "main@sha1:3f7a..."
	Commit   string // full commit SHA
	Digest   string // "sha256:<hex>" over the sorted file paths and contents
	Dir      string // tree root; treat as read-only
	Size     int64  // total bytes of the files
	Created  time.Time

	store   *Store
	refs    int
	retired bool
	ignore  string
}

// Store owns clones and artifacts below one directory.
type Store struct {
	dir string
	now func() time.Time

	mu      sync.Mutex
	current map[string]*Artifact // by source key
}

// NewStore returns a store rooted at dir (created if missing). now stamps artifacts (pass the
// reconciler's clock).
func NewStore(dir string, now func() time.Time) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create git work directory %s: %w", dir, err)
	}
	return &Store{dir: dir, now: now, current: map[string]*Artifact{}}, nil
}

// Acquire returns the current artifact of a source with a hold on it, or nil. Call Release when done.
func (s *Store) Acquire(key string) *Artifact {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.current[key]
	if a != nil {
		a.refs++
	}
	return a
}

// Release drops a hold taken by Acquire; a superseded artifact is deleted with its last hold.
func (a *Artifact) Release() {
	if a == nil {
		return
	}
	s := a.store
	s.mu.Lock()
	a.refs--
	del := a.retired && a.refs == 0
	s.mu.Unlock()
	if del {
		_ = os.RemoveAll(a.Dir)
	}
}

// Forget retires a source's artifact and deletes its clone (the GitRepository was deleted).
func (s *Store) Forget(key string) {
	s.mu.Lock()
	a := s.current[key]
	delete(s.current, key)
	if a != nil {
		a.retired = true
	}
	del := a != nil && a.refs == 0
	s.mu.Unlock()
	if del {
		_ = os.RemoveAll(a.Dir)
	}
	_ = os.RemoveAll(s.repoDir(key))
}

func keyDir(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

func (s *Store) repoDir(key string) string { return filepath.Join(s.dir, "repos", keyDir(key)) }

// Fetch brings the clone of key up to date, resolves the reference and returns the artifact for the
// resolved revision, with changed=true when it differs from the previous artifact (a new commit or new
// ignore rules). The context bounds the network operations (spec.timeout).
func (s *Store) Fetch(ctx context.Context, key string, req Request) (art *Artifact, changed bool, err error) {
	repo, err := s.openRepo(key, req.URL)
	if err != nil {
		return nil, false, err
	}
	if err := fetch(ctx, repo, req); err != nil {
		return nil, false, err
	}
	commit, revision, err := resolve(repo, req.Ref)
	if err != nil {
		return nil, false, err
	}
	ignore := ""
	if req.Ignore != nil {
		ignore = *req.Ignore
	}

	s.mu.Lock()
	cur := s.current[key]
	s.mu.Unlock()
	if cur != nil && cur.Revision == revision && cur.ignore == ignore {
		return cur, false, nil
	}

	a, err := s.materialize(key, repo, commit, revision, req.Ignore)
	if err != nil {
		return nil, false, err
	}
	a.ignore = ignore
	s.mu.Lock()
	old := s.current[key]
	s.current[key] = a
	var del *Artifact
	if old != nil {
		old.retired = true
		if old.refs == 0 {
			del = old
		}
	}
	s.mu.Unlock()
	if del != nil {
		_ = os.RemoveAll(del.Dir)
	}
	return a, true, nil
}

func (s *Store) openRepo(key, url string) (*git.Repository, error) {
	dir := s.repoDir(key)
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("open local clone %s: %w", dir, err)
	}
	rem, err := repo.Remote("origin")
	switch {
	case err == nil && len(rem.Config().URLs) == 1 && rem.Config().URLs[0] == url:
		return repo, nil
	case err == nil:
		// The URL changed: start from a clean clone so no object of the old repository leaks in.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("reset local clone %s: %w", dir, err)
		}
		return s.openRepo(key, url)
	case !errors.Is(err, git.ErrRemoteNotFound):
		return nil, fmt.Errorf("read remote of local clone %s: %w", dir, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, fmt.Errorf("configure remote %s: %w", url, err)
	}
	return repo, nil
}

func refSpecs(r Ref) []config.RefSpec {
	switch {
	case r.Commit != "" && r.Branch != "":
		return []config.RefSpec{config.RefSpec("+refs/heads/" + r.Branch + ":refs/heads/" + r.Branch)}
	case r.Commit != "":
		return []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	case r.Name != "":
		return []config.RefSpec{config.RefSpec("+" + r.Name + ":" + r.Name)}
	case r.SemVer != "" || r.Tag != "":
		return []config.RefSpec{"+refs/tags/*:refs/tags/*"}
	default:
		b := r.Branch
		if b == "" {
			b = DefaultBranch
		}
		return []config.RefSpec{config.RefSpec("+refs/heads/" + b + ":refs/heads/" + b)}
	}
}

func fetch(ctx context.Context, repo *git.Repository, req Request) error {
	opts := &git.FetchOptions{RemoteName: "origin", RefSpecs: refSpecs(req.Ref), Force: true, Tags: git.NoTags}
	if a := req.Auth; a != nil {
		switch {
		case a.BearerToken != "":
			opts.Auth = &githttp.TokenAuth{Token: a.BearerToken}
		case a.Username != "" || a.Password != "":
			opts.Auth = &githttp.BasicAuth{Username: a.Username, Password: a.Password}
		}
		opts.CABundle = a.CABundle
	}
	err := repo.FetchContext(ctx, opts)
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w for %s: %v; check the username/password or bearerToken in the GitRepository's secretRef",
			ErrAuth, req.URL, err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("repository %s not found: %w", req.URL, err)
	case strings.Contains(err.Error(), "couldn't find remote ref"):
		return fmt.Errorf("%w: %s has no %s", ErrRefNotFound, req.URL, describeRef(req.Ref))
	}
	return fmt.Errorf("fetch %s: %w", req.URL, err)
}

func describeRef(r Ref) string {
	switch {
	case r.Commit != "" && r.Branch != "":
		return fmt.Sprintf("branch '%s'", r.Branch)
	case r.Name != "":
		return fmt.Sprintf("reference '%s'", r.Name)
	case r.SemVer != "":
		return fmt.Sprintf("tag matching semver '%s'", r.SemVer)
	case r.Tag != "":
		return fmt.Sprintf("tag '%s'", r.Tag)
	case r.Branch != "":
		return fmt.Sprintf("branch '%s'", r.Branch)
	}
	return fmt.Sprintf("branch '%s' (the default when spec.ref is empty)", DefaultBranch)
}

// resolve returns the commit and Flux's revision string for the reference.
func resolve(repo *git.Repository, r Ref) (*object.Commit, string, error) {
	peel := func(h plumbing.Hash) (*object.Commit, error) {
		if t, err := repo.TagObject(h); err == nil {
			return t.Commit()
		}
		return repo.CommitObject(h)
	}
	named := func(refName plumbing.ReferenceName, label string) (*object.Commit, string, error) {
		ref, err := repo.Reference(refName, true)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s", ErrRefNotFound, label)
		}
		c, err := peel(ref.Hash())
		if err != nil {
			return nil, "", fmt.Errorf("resolve %s to a commit: %w", label, err)
		}
		return c, "", nil
	}
	switch {
	case r.Commit != "":
		c, err := repo.CommitObject(plumbing.NewHash(r.Commit))
		if err != nil || !plumbing.IsHash(r.Commit) {
			return nil, "", fmt.Errorf("%w: commit '%s' (spec.ref.commit must be a full SHA-1 reachable from a branch)",
				ErrRefNotFound, r.Commit)
		}
		if r.Branch != "" {
			return c, r.Branch + "@sha1:" + c.Hash.String(), nil
		}
		return c, "sha1:" + c.Hash.String(), nil
	case r.Name != "":
		c, _, err := named(plumbing.ReferenceName(r.Name), "reference '"+r.Name+"'")
		if err != nil {
			return nil, "", err
		}
		return c, r.Name + "@sha1:" + c.Hash.String(), nil
	case r.SemVer != "":
		return resolveSemVer(repo, r.SemVer, peel)
	case r.Tag != "":
		c, _, err := named(plumbing.NewTagReferenceName(r.Tag), "tag '"+r.Tag+"'")
		if err != nil {
			return nil, "", err
		}
		return c, r.Tag + "@sha1:" + c.Hash.String(), nil
	default:
		b := r.Branch
		if b == "" {
			b = DefaultBranch
		}
		c, _, err := named(plumbing.NewBranchReferenceName(b), "branch '"+b+"'")
		if err != nil {
			return nil, "", err
		}
		return c, b + "@sha1:" + c.Hash.String(), nil
	}
}

func resolveSemVer(repo *git.Repository, rng string, peel func(plumbing.Hash) (*object.Commit, error)) (*object.Commit, string, error) {
	constraint, err := semver.NewConstraint(rng)
	if err != nil {
		return nil, "", fmt.Errorf("%w '%s' in spec.ref.semver: %v", ErrInvalidSemVer, rng, err)
	}
	tags, err := repo.Tags()
	if err != nil {
		return nil, "", fmt.Errorf("list tags: %w", err)
	}
	type cand struct {
		v    *semver.Version
		name string
		hash plumbing.Hash
	}
	var cands []cand
	_ = tags.ForEach(func(ref *plumbing.Reference) error {
		name := ref.Name().Short()
		v, err := semver.NewVersion(name)
		if err == nil && constraint.Check(v) {
			cands = append(cands, cand{v, name, ref.Hash()})
		}
		return nil
	})
	if len(cands) == 0 {
		return nil, "", fmt.Errorf("%w: no tag matches semver '%s'", ErrRefNotFound, rng)
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].v.Equal(cands[j].v) {
			return cands[i].v.GreaterThan(cands[j].v)
		}
		return cands[i].name < cands[j].name
	})
	best := cands[0]
	c, err := peel(best.hash)
	if err != nil {
		return nil, "", fmt.Errorf("resolve tag '%s' to a commit: %w", best.name, err)
	}
	return c, best.name + "@sha1:" + c.Hash.String(), nil
}

// materialize writes the commit's tree to a new artifact directory, applies the ignore rules and
// computes the digest. A failure leaves nothing behind.
func (s *Store) materialize(key string, repo *git.Repository, c *object.Commit, revision string, ignore *string) (*Artifact, error) {
	base := filepath.Join(s.dir, "artifacts", keyDir(key))
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("create artifact directory: %w", err)
	}
	dir, err := os.MkdirTemp(base, c.Hash.String()[:12]+"-")
	if err != nil {
		return nil, fmt.Errorf("create artifact directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", revision, err)
	}
	made := map[string]bool{dir: true}
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil // symlinks and submodules are not part of the artifact
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return fmt.Errorf("path %q escapes the repository root", f.Name)
		}
		if d := filepath.Dir(p); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for ; d != dir && !made[d]; d = filepath.Dir(d) {
				made[d] = true
			}
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("write tree of %s: %w", revision, err)
	}
	if err := applyIgnore(dir, ignore); err != nil {
		return nil, err
	}
	digest, size, err := digestDir(dir)
	if err != nil {
		return nil, err
	}
	ok = true
	return &Artifact{Revision: revision, Commit: c.Hash.String(), Digest: digest, Dir: dir, Size: size,
		Created: s.now(), store: s}, nil
}

// applyIgnore removes what source-controller leaves out of an artifact. The patterns are those of every
// .sourceignore file in the tree followed by spec.ignore (gitignore syntax, so "!" re-includes). When
// there are none, the default exclusions apply (VCS files, images and archives, CI configuration:
// fluxcd/pkg/sourceignore DefaultPatterns); when there are some, they replace the defaults except the
// VCS ones -- source-controller's storage.SourceIgnoreFilter, and the API's "Ignore overrides the set
// of excluded patterns".
func applyIgnore(dir string, ignore *string) error {
	domain := strings.Split(dir, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(dir, domain)
	if err != nil {
		return fmt.Errorf("load .sourceignore patterns: %w", err)
	}
	if ignore != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*ignore), domain)...)
	}
	m := sourceignore.NewDefaultMatcher(nil, domain)
	if len(ps) > 0 {
		m = sourceignore.NewMatcher(append(sourceignore.VCSPatterns(domain), ps...))
	}
	var drop []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if m.Match(strings.Split(p, string(filepath.Separator)), d.IsDir()) {
			drop = append(drop, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply ignore rules: %w", err)
	}
	for _, p := range drop {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("apply ignore rules: %w", err)
		}
	}
	return nil
}

func digestDir(dir string) (string, int64, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("digest artifact: %w", err)
	}
	slices.Sort(files)
	h := sha256.New()
	var size int64
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return "", 0, fmt.Errorf("digest artifact: %w", err)
		}
		size += int64(len(b))
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), size, nil
}
