package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
)

// SeedSpec says what Seed pushes into Gitea: the twin's repositories (twin spec.git) or a layout of
// examples/repos (Layout.SeedSpec).
type SeedSpec struct {
	// Org is the organization that owns the repositories; it and its persona teams are created if missing.
	Org string
	// Repos are the repositories, seeded in this order.
	Repos []SeedRepo
	// Root is the folder relative branch folders are read from; absolute ones are read as they are.
	Root string
	// Reader, when set, is a read-only user Seed creates and makes an ApplicationDeveloper in Org: the
	// user GitOps configurations read the repositories with (the developer persona reads the application
	// layer and writes nothing). Gitea user names are global, and CreateUser wraps ErrExists for a taken
	// one: a second Seed on the same Gitea names another reader or none.
	Reader string
	// Rewrite, when set, may change each pushed file's content on the way (path is slash-separated,
	// relative to the branch folder); RegistryRewrite puts the twin's registry into image names.
	Rewrite func(path string, data []byte) []byte
	// Protect applies MaintainerProtection (by the repository's layers) to every branch after its push.
	Protect bool
	// Webhooks are added to every repository.
	Webhooks []Webhook
	// Progress, when set, is told of every branch as it is seeded, in order.
	Progress func(SeedPush)
}

// SeedRepo is one repository to seed: each branch is the whole content of a local folder.
type SeedRepo struct {
	Name        string
	Description string
	// Layers are the configuration layers the repository holds; persona access follows from them
	// (GrantLayers). Empty means both, ClusterLayer and AppLayer.
	Layers []Layer
	// Branches maps each branch to the folder (relative to SeedSpec.Root, or absolute) that is its content.
	Branches map[string]string
	// DefaultBranch is the branch clones check out. Empty means main when it is one of Branches, else the
	// first branch in name order.
	DefaultBranch string
}

// SeedPush is one branch Seed pushed, as SeedSpec.Progress is told of it.
type SeedPush struct {
	Repo   Repo
	Branch string
	// Dir is the branch's folder as SeedRepo.Branches gives it.
	Dir string
	// Commit is the commit the branch points at afterwards.
	Commit string
	// Pushed is false when the branch held the folder's content already and nothing was sent.
	Pushed bool
}

// Seeded is what Seed made.
type Seeded struct {
	// Reader is SeedSpec.Reader's user with its token; nil when none was asked for.
	Reader *User
	// Repos are the seeded repositories, in SeedSpec.Repos' order.
	Repos []SeededRepo
}

// SeededRepo is one repository Seed pushed.
type SeededRepo struct {
	Repo Repo
	// Layers the repository holds (SeedRepo.Layers, defaulted).
	Layers []Layer
	// DefaultBranch is the branch clones check out.
	DefaultBranch string
	// Commits maps each branch to the commit it points at.
	Commits map[string]string
	// CloneURL is the repository's HTTP clone URL.
	CloneURL string
}

// CloneURLs maps each seeded repository's name to its HTTP clone URL.
func (s *Seeded) CloneURLs() map[string]string {
	out := make(map[string]string, len(s.Repos))
	for _, r := range s.Repos {
		out[r.Repo.Name] = r.CloneURL
	}
	return out
}

// SeedError says what Seed was seeding when it failed: Target is the organization, the reader user, a
// repository ("org/name") or a branch of one ("org/name@branch").
type SeedError struct {
	Target string
	Err    error
}

func (e *SeedError) Error() string { return fmt.Sprintf("gitserver: seed %s: %v", e.Target, e.Err) }

func (e *SeedError) Unwrap() error { return e.Err }

// RegistryRewrite is a SeedSpec.Rewrite (and PushRequest.Rewrite) that replaces PlaceholderRegistry with
// host ("127.0.0.1:40123") in every file, so the manifests' images name the twin's registry.
func RegistryRewrite(host string) func(path string, data []byte) []byte {
	from, to := []byte(PlaceholderRegistry), []byte(host)
	return func(_ string, data []byte) []byte { return bytes.ReplaceAll(data, from, to) }
}

// Seed pushes repositories into Gitea as the client's user (the admin): it creates the organization and
// its persona teams, the reader user (SeedSpec.Reader) as an application developer, and then, per
// repository, creates it, grants the personas access by its layers, pushes the default branch first and
// the other branches from it in name order (so they share its history: promotion by pull request needs a
// common ancestor), each folder as one commit "Seed <branch> from <folder>" with SeedSpec.Rewrite
// applied, sets the default branch, protects the branches and adds the webhooks as the spec says.
//
// It is idempotent but for the reader: an existing organization, team or repository is kept, and a
// branch that holds its folder's content already is not pushed again. Once protected, a branch changes
// only through pull requests: seeding other content into it fails with ErrPushRejected. Every error is a
// *SeedError naming what was being seeded.
func (c *Client) Seed(ctx context.Context, spec SeedSpec) (*Seeded, error) {
	fail := func(target string, err error) (*Seeded, error) {
		return nil, &SeedError{Target: target, Err: err}
	}
	for _, r := range spec.Repos {
		if len(r.Branches) == 0 {
			return fail(spec.Org+"/"+r.Name, fmt.Errorf("no branches: %w; map at least one branch to a folder", ErrInvalidOptions))
		}
		if r.DefaultBranch != "" {
			if _, ok := r.Branches[r.DefaultBranch]; !ok {
				return fail(spec.Org+"/"+r.Name, fmt.Errorf("default branch %q is not one of its branches: %w", r.DefaultBranch, ErrInvalidOptions))
			}
		}
	}
	if err := c.CreateOrg(ctx, spec.Org); err != nil && !errors.Is(err, ErrExists) {
		return fail(spec.Org, err)
	}
	if err := c.EnsurePersonaTeams(ctx, spec.Org); err != nil {
		return fail(spec.Org, err)
	}
	out := &Seeded{}
	if spec.Reader != "" {
		reader, err := c.CreateUser(ctx, spec.Reader)
		if err != nil {
			return fail(spec.Reader, err)
		}
		if err := c.AssignPersona(ctx, spec.Org, reader, ApplicationDeveloper); err != nil {
			return fail(spec.Reader, err)
		}
		out.Reader = reader
	}
	for _, r := range spec.Repos {
		seeded, err := c.seedRepo(ctx, spec, r)
		if err != nil {
			return nil, err
		}
		out.Repos = append(out.Repos, seeded)
	}
	return out, nil
}

// seedRepo seeds one repository of spec.
func (c *Client) seedRepo(ctx context.Context, spec SeedSpec, r SeedRepo) (SeededRepo, error) {
	repo := Repo{Owner: spec.Org, Name: r.Name}
	fail := func(target string, err error) (SeededRepo, error) {
		return SeededRepo{}, &SeedError{Target: target, Err: err}
	}
	layers := r.Layers
	if len(layers) == 0 {
		layers = []Layer{ClusterLayer, AppLayer}
	}
	def := defaultBranch(r)
	if err := c.CreateRepo(ctx, repo, RepoOptions{Description: r.Description, DefaultBranch: def}); err != nil && !errors.Is(err, ErrExists) {
		return fail(repo.String(), err)
	}
	if err := c.GrantLayers(ctx, repo, layers); err != nil {
		return fail(repo.String(), err)
	}
	seeded := SeededRepo{Repo: repo, Layers: layers, DefaultBranch: def, Commits: map[string]string{}, CloneURL: c.CloneURL(repo)}
	for _, b := range branchOrder(r.Branches, def) {
		dir := r.Branches[b]
		res, err := c.Push(ctx, PushRequest{Repo: repo, Branch: b, From: def, Dir: resolve(spec.Root, dir),
			Message: fmt.Sprintf("Seed %s from %s", b, dir), Rewrite: spec.Rewrite})
		if err != nil {
			return fail(repo.String()+"@"+b, err)
		}
		seeded.Commits[b] = res.Commit
		if spec.Progress != nil {
			spec.Progress(SeedPush{Repo: repo, Branch: b, Dir: dir, Commit: res.Commit, Pushed: res.Pushed})
		}
	}
	if err := c.SetDefaultBranch(ctx, repo, def); err != nil {
		return fail(repo.String(), err)
	}
	if spec.Protect {
		for _, b := range branchOrder(r.Branches, def) {
			if err := c.ProtectBranch(ctx, repo, b, MaintainerProtection(layers)); err != nil && !errors.Is(err, ErrExists) {
				return fail(repo.String()+"@"+b, err)
			}
		}
	}
	for _, w := range spec.Webhooks {
		if _, err := c.CreateWebhook(ctx, repo, w); err != nil {
			return fail(repo.String(), err)
		}
	}
	return seeded, nil
}

// defaultBranch is r's default branch: DefaultBranch, else main if it is a branch, else the first by name.
func defaultBranch(r SeedRepo) string {
	if r.DefaultBranch != "" {
		return r.DefaultBranch
	}
	if _, ok := r.Branches["main"]; ok {
		return "main"
	}
	names := make([]string, 0, len(r.Branches))
	for b := range r.Branches {
		names = append(names, b)
	}
	sort.Strings(names)
	return names[0]
}

// branchOrder is first, then the other branches by name.
func branchOrder(branches map[string]string, first string) []string {
	out := make([]string, 0, len(branches))
	for b := range branches {
		if b != first {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return append([]string{first}, out...)
}

// resolve is dir under root, or dir when it is absolute or root is empty.
func resolve(root, dir string) string {
	if filepath.IsAbs(dir) || root == "" {
		return dir
	}
	return filepath.Join(root, filepath.FromSlash(dir))
}
