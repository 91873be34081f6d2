package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
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

// Auth holds credentials, as read from the GitRepository's secretRef: for HTTP(S) the keys
// "username"/"password", "bearerToken", "ca.crt"; for SSH "identity" (a private key), "known_hosts" and
// "password" (the identity's passphrase), the keys source-controller reads (fluxcd/pkg/git NewAuthOptions).
type Auth struct {
	Username, Password string
	BearerToken        string
	CABundle           []byte
	Identity           []byte
	KnownHosts         []byte
}

// Request is one fetch.
type Request struct {
	URL    string
	Ref    Ref
	Auth   *Auth
	Ignore *string // spec.ignore, appended to the default and .sourceignore patterns
	// Observed is true when the source has an artifact already: source-controller then lists the remote
	// first (gogit Clone with LastObservedCommit), and a failure reads "unable to list remote for".
	Observed bool
}

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
	config := ignoreConfig(req.Ignore)
	if cur := s.unchanged(key, revision, config); cur != nil {
		return cur, false, nil
	}
	files, err := treeFiles(commit, revision)
	if err != nil {
		return nil, false, err
	}
	a, err := s.publish(key, revision, config, files, req.Ignore, true)
	if err != nil {
		return nil, false, err
	}
	a.Commit = commit.Hash.String()
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
	if IsSSH(req.URL) {
		auth, err := sshAuth(req.URL, req.Auth)
		if err != nil {
			return err
		}
		opts.Auth = auth
		err = repo.FetchContext(ctx, opts)
		switch {
		case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
			return nil
		case strings.Contains(err.Error(), "couldn't find remote ref"):
			return fmt.Errorf("%w: %s has no %s", ErrRefNotFound, req.URL, describeRef(req.Ref))
		}
		// fluxcd/pkg/git gogit's Clone: "unable to clone '<url>': <go-git's error>", or, with an artifact
		// already observed, its remote listing: "unable to list remote for '<url>': ..." (seen on real Flux).
		if req.Observed {
			return fmt.Errorf("unable to list remote for '%s': %w", req.URL, err)
		}
		return fmt.Errorf("unable to clone '%s': %w", req.URL, err)
	}
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

// treeFiles lists the commit's regular files (symlinks and submodules are not part of an artifact).
func treeFiles(c *object.Commit, revision string) ([]File, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", revision, err)
	}
	var files []File
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		files = append(files, File{Name: f.Name, Read: func() ([]byte, error) { return blobContent(f) }})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", revision, err)
	}
	return files, nil
}

func blobContent(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
