package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrPushRejected is wrapped when the server refuses a push: a protected branch, a non-fast-forward
// update, or missing write access.
var ErrPushRejected = errors.New("push rejected")

// PushRequest commits the content of a local directory to a branch and pushes it.
type PushRequest struct {
	Repo   Repo
	Branch string
	// Dir is the local directory whose content becomes the branch's whole tree (files not in Dir are
	// removed from the branch). .git folders inside it are skipped.
	Dir     string
	Message string
	// From is the branch a new Branch starts from; empty means the repository's default branch. It is not
	// used when Branch exists (the commit then goes on top of it) or when the repository is empty.
	From string
	// Rewrite, when set, may change each file's content on the way (path is slash-separated, relative to
	// Dir); Seed uses it to put the twin's registry host into image names.
	Rewrite func(path string, data []byte) []byte
}

// PushResult says what a push did.
type PushResult struct {
	// Commit is the commit the branch points at afterwards.
	Commit string
	// Pushed is false when the directory matched the branch already and nothing was sent.
	Pushed bool
}

// PushDir commits the content of localDir as the whole tree of branch and pushes it over HTTP with the
// client's token, then waits until the API shows the branch at the new commit. A new branch starts from
// the default branch. It wraps ErrPushRejected when Gitea refuses the push (e.g. a protected branch).
func (c *Client) PushDir(ctx context.Context, repo Repo, branch, localDir, message string) (string, error) {
	r, err := c.Push(ctx, PushRequest{Repo: repo, Branch: branch, Dir: localDir, Message: message})
	return r.Commit, err
}

// Push commits and pushes as PushRequest says; see PushDir. The repository is worked on in memory: nothing
// is written to disk.
func (c *Client) Push(ctx context.Context, req PushRequest) (PushResult, error) {
	if err := req.Repo.validate(); err != nil {
		return PushResult{}, err
	}
	if req.Branch == "" || req.Message == "" {
		return PushResult{}, fmt.Errorf("gitserver: push to %s: branch %q and message %q must be set: %w", req.Repo, req.Branch, req.Message, ErrInvalidOptions)
	}
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		return PushResult{}, fmt.Errorf("gitserver: push %q to %s: not a readable directory: %w; give the folder to commit", req.Dir, req.Repo, ErrInvalidOptions)
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()

	auth := &githttp.BasicAuth{Username: c.user, Password: c.token}
	wt := memfs.New()
	r, err := git.Init(memory.NewStorage(), wt)
	if err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push to %s: init: %w", req.Repo, err)
	}
	remote, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.CloneURL(req.Repo)}})
	if err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push to %s: %w", req.Repo, err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return PushResult{}, c.red.err(fmt.Errorf("gitserver: list branches of %s as %s: %w", req.Repo, c.user, classifyPush(err)))
	}
	heads := map[string]plumbing.Hash{}
	for _, ref := range refs {
		if ref.Name().IsBranch() {
			heads[ref.Name().Short()] = ref.Hash()
		}
	}

	// The commit goes on top of the branch, else on top of the branch it starts from, else it is the first.
	exists := false
	startFrom := ""
	if _, ok := heads[req.Branch]; ok {
		exists, startFrom = true, req.Branch
	} else if len(heads) > 0 {
		startFrom = req.From
		if startFrom == "" {
			if startFrom, err = c.DefaultBranch(ctx, req.Repo); err != nil {
				return PushResult{}, err
			}
		}
		if _, ok := heads[startFrom]; !ok {
			return PushResult{}, fmt.Errorf("gitserver: push new branch %s to %s: starting branch %q does not exist: %w", req.Branch, req.Repo, startFrom, ErrInvalidOptions)
		}
	}
	local := plumbing.NewBranchReferenceName(req.Branch)
	var base plumbing.Hash
	if startFrom != "" {
		err := r.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin", Auth: auth,
			RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", startFrom, local))},
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return PushResult{}, c.red.err(fmt.Errorf("gitserver: fetch branch %s of %s as %s: %w", startFrom, req.Repo, c.user, classifyPush(err)))
		}
		ref, err := r.Reference(local, true)
		if err != nil {
			return PushResult{}, fmt.Errorf("gitserver: fetch branch %s of %s: %w", startFrom, req.Repo, err)
		}
		base = ref.Hash()
	}
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, local)); err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push to %s: set HEAD: %w", req.Repo, err)
	}
	w, err := r.Worktree()
	if err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push to %s: %w", req.Repo, err)
	}
	if !base.IsZero() {
		if err := w.Checkout(&git.CheckoutOptions{Branch: local, Force: true}); err != nil {
			return PushResult{}, fmt.Errorf("gitserver: push to %s: check out %s: %w", req.Repo, req.Branch, err)
		}
	}
	if err := replaceTree(wt, req.Dir, req.Rewrite); err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push %s to %s: %w", req.Dir, req.Repo, err)
	}
	if err := w.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return PushResult{}, fmt.Errorf("gitserver: push %s to %s: stage: %w", req.Dir, req.Repo, err)
	}
	sig := &object.Signature{Name: c.user, Email: c.user + "@hybridtwin.example", When: time.Now()}
	head, err := w.Commit(req.Message, &git.CommitOptions{Author: sig})
	switch {
	case errors.Is(err, git.ErrEmptyCommit):
		if exists {
			return PushResult{Commit: base.String()}, nil // the branch holds this content already
		}
		head = base // a new branch at the same content as the one it starts from
		if head.IsZero() {
			return PushResult{}, fmt.Errorf("gitserver: push %s to %s: the directory is empty: %w; a first commit needs files", req.Dir, req.Repo, ErrInvalidOptions)
		}
	case err != nil:
		return PushResult{}, fmt.Errorf("gitserver: push %s to %s: commit: %w", req.Dir, req.Repo, err)
	}

	err = r.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin", Auth: auth,
		RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", head, local))},
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return PushResult{}, c.red.err(fmt.Errorf("gitserver: push %s to branch %s of %s as %s: %w", short(head.String()), req.Branch, req.Repo, c.user, classifyPush(err)))
	}
	if err := c.WaitBranch(ctx, req.Repo, req.Branch, head.String()); err != nil {
		return PushResult{}, err
	}
	return PushResult{Commit: head.String(), Pushed: true}, nil
}

// classifyPush marks the server's refusals with ErrPushRejected.
func classifyPush(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, transport.ErrAuthorizationFailed), errors.Is(err, transport.ErrAuthenticationRequired),
		strings.Contains(msg, "command error on"), strings.Contains(msg, "non-fast-forward"),
		strings.Contains(msg, "protected branch"), strings.Contains(msg, "hook declined"):
		return fmt.Errorf("%w: %w", ErrPushRejected, err)
	}
	return err
}

// replaceTree makes the worktree hold exactly the files of dir.
func replaceTree(wt billy.Filesystem, dir string, rewrite func(string, []byte) []byte) error {
	top, err := wt.ReadDir("/")
	if err != nil {
		return err
	}
	for _, fi := range top {
		if err := removeAll(wt, "/"+fi.Name()); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file; only files and folders can be pushed", path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		slash := filepath.ToSlash(rel)
		if rewrite != nil {
			data = rewrite(slash, data)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := wt.MkdirAll(filepath.Dir(slash), 0o755); err != nil {
			return err
		}
		f, err := wt.OpenFile(slash, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

func removeAll(fsys billy.Filesystem, path string) error {
	fi, err := fsys.Lstat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := fsys.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeAll(fsys, path+"/"+e.Name()); err != nil {
				return err
			}
		}
	}
	return fsys.Remove(path)
}
