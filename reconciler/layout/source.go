package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssh/knownhosts"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrSource is wrapped when a repository to validate cannot be cloned or its revision not found.
var ErrSource = errors.New("repository source unavailable")

// SourceOptions say which revision of a repository to validate and how to reach it.
type SourceOptions struct {
	// Ref is a branch, a tag or a commit (full or abbreviated SHA); for a local repository any revision
	// git understands that go-git resolves (HEAD~1, a remote branch origin/main, ...). Empty: the
	// remote's default branch (HEAD).
	Ref string
	// Username and Token authenticate HTTP(S) clones with basic auth (a Gitea, GitHub or Azure DevOps
	// token is the password). Username defaults to "git" when only Token is set.
	Username, Token string
	// SSHIdentity (a private key) and SSHKnownHosts (known_hosts content) authenticate ssh:// clones, as a
	// Flux GitRepository Secret's identity and known_hosts do: both are required, and the host key is
	// verified strictly against SSHKnownHosts (source-controller's rule; no fallback to ~/.ssh).
	SSHIdentity, SSHKnownHosts []byte
	// Timeout bounds the clone; Profile.GitTimeout when zero.
	Timeout time.Duration
}

// Source is one revision of a repository, written out as a plain directory tree.
type Source struct {
	// Dir holds the revision's files (no .git). Validate it like a local checkout.
	Dir string
	// URL is the remote, or the local repository's directory.
	URL string
	// Revision names what Dir holds as Flux does: "<ref>@sha1:<commit>".
	Revision string
	// Commit is the full commit SHA.
	Commit string
	tmp    string
}

// Close removes the temporary tree.
func (s *Source) Close() error {
	if s == nil || s.tmp == "" {
		return nil
	}
	return os.RemoveAll(s.tmp)
}

// IsRemote reports whether location is an HTTP(S) or ssh:// Git URL rather than a local path.
func IsRemote(location string) bool {
	u, err := url.Parse(location)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ssh") && u.Host != ""
}

// OpenSource makes a revision of a repository available as a directory tree:
//
//   - an http(s) URL is cloned with go-git into memory (every branch and tag), the revision o.Ref is
//     resolved (branch, then tag, then commit) and its tree written to a temporary directory;
//   - a local directory inside a Git work tree is read through its .git: the tree of revision o.Ref at
//     the directory's path is written out, without touching the work tree or the index.
//
// The caller must Close the Source. Problems are wrapped in ErrSource (or ErrInput for a bad location).
func OpenSource(ctx context.Context, location string, o SourceOptions) (*Source, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultProfile().GitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if IsRemote(location) {
		return openRemote(ctx, location, o)
	}
	if strings.Contains(location, "://") || strings.HasPrefix(location, "git@") {
		return nil, fmt.Errorf("%w: %s: only http(s) and ssh:// Git URLs and local directories are supported; write git@host:path as ssh://git@host/path", ErrInput, location)
	}
	return openLocal(location, o)
}

func openRemote(ctx context.Context, location string, o SourceOptions) (*Source, error) {
	safe := redactURL(location)
	var auth transport.AuthMethod
	if strings.HasPrefix(location, "ssh://") {
		a, err := sshAuth(location, o)
		if err != nil {
			return nil, err
		}
		auth = a
	} else if o.Token != "" {
		user := o.Username
		if user == "" {
			user = "git"
		}
		auth = &githttp.BasicAuth{Username: user, Password: o.Token}
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL: location, Auth: auth, NoCheckout: true, Tags: git.AllTags,
	})
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return nil, fmt.Errorf("%w: clone %s: the repository is empty; push a commit first", ErrSource, safe)
		}
		hint := "check the URL and that the server is reachable"
		if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
			hint = "set a token with read access in the environment variable --help names"
		}
		if errors.Is(err, transport.ErrRepositoryNotFound) {
			hint = "check the repository's owner and name, and that the token may read it"
		}
		if ctx.Err() != nil {
			hint = fmt.Sprintf("the clone did not finish within %s", o.Timeout)
		}
		return nil, fmt.Errorf("%w: clone %s: %v; %s", ErrSource, safe, redactErr(err, o.Token), hint)
	}
	ref := o.Ref
	var hash plumbing.Hash
	var name string
	if ref == "" {
		head, err := repo.Head()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: no HEAD: %v; pass --ref", ErrSource, safe, err)
		}
		hash, name = head.Hash(), head.Name().Short()
	} else {
		hash, name, err = resolveRemote(repo, ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: --ref %q: %v", ErrSource, safe, ref, err)
		}
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: commit %s: %v", ErrSource, safe, hash, err)
	}
	return export(commit, "", safe, name)
}

// resolveRemote finds ref in a fresh clone: a branch (refs/remotes/origin/<ref>), a tag (peeled to its
// commit), or a commit SHA, full or abbreviated -- the precedence Flux's GitRepository reference gives
// the fields branch, tag and commit when only one is set.
func resolveRemote(repo *git.Repository, ref string) (plumbing.Hash, string, error) {
	if r, err := repo.Reference(plumbing.NewRemoteReferenceName("origin", ref), true); err == nil {
		return r.Hash(), ref, nil
	}
	if r, err := repo.Tag(ref); err == nil {
		if tag, err := repo.TagObject(r.Hash()); err == nil {
			c, err := tag.Commit()
			if err != nil {
				return plumbing.ZeroHash, "", fmt.Errorf("tag %s does not point at a commit: %v", ref, err)
			}
			return c.Hash, ref, nil
		}
		return r.Hash(), ref, nil
	}
	if h, err := repo.ResolveRevision(plumbing.Revision(ref)); err == nil {
		return *h, ref, nil
	}
	var branches []string
	refs, _ := repo.References()
	if refs != nil {
		_ = refs.ForEach(func(r *plumbing.Reference) error {
			if r.Name().IsRemote() && r.Type() == plumbing.HashReference {
				branches = append(branches, strings.TrimPrefix(r.Name().Short(), "origin/"))
			}
			return nil
		})
	}
	return plumbing.ZeroHash, "", fmt.Errorf("no branch, tag or commit of that name (branches: %s)", strings.Join(branches, ", "))
}

func openLocal(location string, o SourceOptions) (*Source, error) {
	abs, err := filepath.Abs(location)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, location, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrInput, location)
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("%w: --ref %q needs a Git repository, and %s is not inside one: %v", ErrSource, o.Ref, location, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSource, location, err)
	}
	top, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSource, location, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSource, location, err)
	}
	sub, err := filepath.Rel(top, resolved)
	if err != nil || strings.HasPrefix(sub, "..") {
		return nil, fmt.Errorf("%w: %s is outside its repository %s", ErrSource, location, top)
	}
	ref := o.Ref
	if ref == "" {
		ref = "HEAD"
	}
	h, err := repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		// A tag object's name resolves to the tag, not its commit, in some go-git versions: peel it.
		if r, terr := repo.Tag(ref); terr == nil {
			if tag, terr := repo.TagObject(r.Hash()); terr == nil {
				if c, terr := tag.Commit(); terr == nil {
					return export(c, filepath.ToSlash(sub), top, ref)
				}
			}
		}
		return nil, fmt.Errorf("%w: %s: --ref %q: %v; use a branch, tag or commit of the repository", ErrSource, top, ref, err)
	}
	commit, err := repo.CommitObject(*h)
	if err != nil {
		if tag, terr := repo.TagObject(*h); terr == nil {
			if commit, err = tag.Commit(); err == nil {
				return export(commit, filepath.ToSlash(sub), top, ref)
			}
		}
		return nil, fmt.Errorf("%w: %s: --ref %q: %v", ErrSource, top, ref, err)
	}
	return export(commit, filepath.ToSlash(sub), top, ref)
}

// export writes the commit's tree below sub (slash-separated, "" or "." for the root) into a new
// temporary directory. Symbolic links are written as links (kustomize's secure file system refuses
// those that leave the tree, as in Flux); submodules are skipped, as a GitRepository without
// recurseSubmodules does.
func export(c *object.Commit, sub, url, ref string) (*Source, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: tree of %s: %v", ErrSource, url, c.Hash, err)
	}
	if sub != "" && sub != "." {
		tree, err = tree.Tree(sub)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s does not exist at %s (%s): %v", ErrSource, url, sub, ref, c.Hash.String()[:12], err)
		}
	}
	tmp, err := os.MkdirTemp("", "hybridtwin-validate-src-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	s := &Source{Dir: filepath.Join(tmp, "tree"), URL: url, Commit: c.Hash.String(),
		Revision: ref + "@sha1:" + c.Hash.String(), tmp: tmp}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%w: %s: walk %s: %v", ErrSource, url, c.Hash, err)
		}
		dst := filepath.Join(s.Dir, filepath.FromSlash(path.Clean(name)))
		switch entry.Mode {
		case filemode.Dir:
			err = os.MkdirAll(dst, 0o755)
		case filemode.Submodule:
			continue
		default:
			err = writeBlob(tree, name, entry.Mode, dst)
		}
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%w: %s: write %s: %v", ErrSource, url, name, err)
		}
	}
	return s, nil
}

func writeBlob(tree *object.Tree, name string, mode filemode.FileMode, dst string) error {
	f, err := tree.File(name)
	if err != nil {
		return err
	}
	content, err := f.Contents()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if mode == filemode.Symlink {
		return os.Symlink(content, dst)
	}
	perm := os.FileMode(0o644)
	if mode == filemode.Executable {
		perm = 0o755
	}
	return os.WriteFile(dst, []byte(content), perm)
}

// redactURL drops a password from a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

func redactErr(err error, token string) string {
	msg := err.Error()
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "xxxxx")
	}
	return msg
}

// sshAuth is the key and strict host key check of an ssh:// clone (fluxcd/pkg/ssh/knownhosts, the
// database source-controller verifies with).
func sshAuth(location string, o SourceOptions) (transport.AuthMethod, error) {
	if len(o.SSHIdentity) == 0 || len(o.SSHKnownHosts) == 0 {
		return nil, fmt.Errorf("%w: %s: an ssh:// URL needs a private key and a known_hosts with the server's host key (as a Flux Secret's identity and known_hosts); give both", ErrInput, location)
	}
	u, _ := url.Parse(location)
	user := u.User.Username()
	if user == "" {
		user = "git"
	}
	pk, err := gitssh.NewPublicKeys(user, o.SSHIdentity, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the SSH private key: %v; give an unencrypted OpenSSH or PEM private key", ErrInput, location, err)
	}
	cb, _, err := knownhosts.New(o.SSHKnownHosts)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the known_hosts content: %v; give lines as ssh-keyscan prints them", ErrInput, location, err)
	}
	pk.HostKeyCallback = cb
	return pk, nil
}
