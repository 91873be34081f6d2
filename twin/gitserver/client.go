package gitserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
)

// ErrNotFound is wrapped when Gitea answers 404 (no such user, organization, repository, branch or pull
// request, or one the caller may not see).
var ErrNotFound = errors.New("not found in gitea")

// ErrExists is wrapped when creating something that already exists.
var ErrExists = errors.New("already exists in gitea")

// ErrForbidden is wrapped when Gitea refuses an operation to the caller (403, 405), e.g. approving one's
// own pull request or merging before the required approvals.
var ErrForbidden = errors.New("refused by gitea")

// Repo names a repository.
type Repo struct {
	Owner string
	Name  string
}

// String is "owner/name".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

func (r Repo) validate() error {
	if !nameRE.MatchString(r.Owner) || !nameRE.MatchString(r.Name) {
		return fmt.Errorf("gitserver: repository %q: %w; owner and name must be 1-100 of [A-Za-z0-9_.-]", r.String(), ErrInvalidOptions)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// Client calls Gitea's API as one user, with that user's token.
type Client struct {
	base    string
	user    string
	token   string
	profile Profile
	red     *redactor
	http    *http.Client
}

// Admin is a client acting as the site administrator.
func (s *Server) Admin() *Client {
	return &Client{base: s.URL(), user: s.profile.AdminUser, token: s.token, profile: s.profile, red: s.red, http: s.http}
}

// NewClient is a client for any Gitea at baseURL (e.g. a running twin's, from another process), acting as
// user with token.
func NewClient(baseURL, user, token string, p Profile) (*Client, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("gitserver: base URL %q: %w; give http(s)://host:port", baseURL, ErrInvalidOptions)
	}
	red := &redactor{}
	red.add(token)
	return &Client{base: strings.TrimSuffix(baseURL, "/"), user: user, token: token, profile: p, red: red, http: &http.Client{}}, nil
}

// User is the user the client acts as.
func (c *Client) User() string { return c.user }

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// CloneURL is the HTTP clone URL of repo (no credentials in it).
func (c *Client) CloneURL(repo Repo) string {
	return c.base + "/" + repo.Owner + "/" + repo.Name + ".git"
}

// As is a client acting as u, with u's token.
func (c *Client) As(u *User) *Client {
	cc := *c
	cc.user, cc.token = u.Name, u.token
	return &cc
}

// bound gives ctx the profile's request timeout when it has no deadline.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.profile.RequestTimeout)
}

// api is a go-sdk client bound to ctx, signed in with the client's token, or with auth when given. The sdk
// keeps one context per client, so each call gets its own.
func (c *Client) api(ctx context.Context, auth ...gitea.ClientOption) (*gitea.Client, error) {
	opts := []gitea.ClientOption{
		gitea.SetContext(ctx), gitea.SetHTTPClient(c.http), gitea.SetGiteaVersion(c.profile.GiteaVersion),
	}
	if len(auth) > 0 {
		opts = append(opts, auth...)
	} else if c.token != "" {
		opts = append(opts, gitea.SetToken(c.token))
	}
	g, err := gitea.NewClient(c.base, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitserver: client for %s: %w", c.base, err)
	}
	return g, nil
}

// call runs one sdk call with a bounded context and turns its answer into a wrapped, redacted error.
func (c *Client) call(ctx context.Context, what string, f func(g *gitea.Client) (*gitea.Response, error)) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	g, err := c.api(ctx)
	if err != nil {
		return err
	}
	resp, err := f(g)
	return c.wrap(what, resp, err)
}

func (c *Client) wrap(what string, resp *gitea.Response, err error) error {
	if err == nil {
		return nil
	}
	err = shorten(err)
	var kind error
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusNotFound:
			kind = ErrNotFound
		case http.StatusConflict:
			kind = ErrExists
		case http.StatusForbidden, http.StatusMethodNotAllowed:
			kind = ErrForbidden
		case http.StatusUnprocessableEntity:
			// e.g. "approve your own pull is not allowed"
			if strings.Contains(err.Error(), "not allowed") {
				kind = ErrForbidden
			}
		default:
			if resp.StatusCode >= 500 {
				kind = ErrServer
			}
		}
		// Gitea says "already exists" with 409, 422 or 403 (branch protection), depending on the object.
		if resp.StatusCode < 500 && strings.Contains(strings.ToLower(err.Error()), "already exist") {
			kind = ErrExists
		}
	}
	if kind != nil {
		return c.red.err(fmt.Errorf("gitserver: %s as %s: %w: %w", what, c.user, kind, err))
	}
	return c.red.err(fmt.Errorf("gitserver: %s as %s: %w", what, c.user, err))
}

// CreateOrg creates an organization whose repositories only its members see. It wraps ErrExists if the
// organization exists.
func (c *Client) CreateOrg(ctx context.Context, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("gitserver: organization name %q: %w; use 1-100 of [A-Za-z0-9_.-]", name, ErrInvalidOptions)
	}
	return c.call(ctx, "create organization "+name, func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.CreateOrg(gitea.CreateOrgOption{Name: name, Visibility: gitea.VisibleTypePrivate, RepoAdminChangeTeamAccess: false})
		return resp, err
	})
}

// RepoOptions shape a new repository.
type RepoOptions struct {
	Description string
	// DefaultBranch is the branch clones check out; "main" when empty. It need not exist yet.
	DefaultBranch string
	// Public makes the repository visible to every signed-in user; GitOps configuration repositories are
	// private by default (the guidance: "use a private Git repository").
	Public bool
}

// CreateRepo creates an empty repository under an organization (or the admin's own user when repo.Owner
// is the client's user). It wraps ErrExists if it exists.
func (c *Client) CreateRepo(ctx context.Context, repo Repo, o RepoOptions) error {
	if err := repo.validate(); err != nil {
		return err
	}
	if o.DefaultBranch == "" {
		o.DefaultBranch = "main"
	}
	opt := gitea.CreateRepoOption{Name: repo.Name, Description: o.Description, Private: !o.Public, DefaultBranch: o.DefaultBranch}
	return c.call(ctx, "create repository "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		if repo.Owner == c.user {
			_, resp, err := g.CreateRepo(opt)
			return resp, err
		}
		_, resp, err := g.CreateOrgRepo(repo.Owner, opt)
		return resp, err
	})
}

// SetDefaultBranch changes the branch clones check out and pull requests target by default.
func (c *Client) SetDefaultBranch(ctx context.Context, repo Repo, branch string) error {
	return c.call(ctx, "set default branch of "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.EditRepo(repo.Owner, repo.Name, gitea.EditRepoOption{DefaultBranch: &branch})
		return resp, err
	})
}

// DefaultBranch is the repository's default branch.
func (c *Client) DefaultBranch(ctx context.Context, repo Repo) (string, error) {
	var b string
	err := c.call(ctx, "get repository "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		r, resp, err := g.GetRepo(repo.Owner, repo.Name)
		if err == nil {
			b = r.DefaultBranch
		}
		return resp, err
	})
	return b, err
}

// BranchCommit is the commit a branch points at. It wraps ErrNotFound if the branch does not exist.
func (c *Client) BranchCommit(ctx context.Context, repo Repo, branch string) (string, error) {
	var id string
	err := c.call(ctx, fmt.Sprintf("get branch %s of %s", branch, repo), func(g *gitea.Client) (*gitea.Response, error) {
		b, resp, err := g.GetRepoBranch(repo.Owner, repo.Name, branch)
		if err == nil {
			if b.Commit == nil {
				return resp, fmt.Errorf("branch %s has no commit", branch)
			}
			id = b.Commit.ID
		}
		return resp, err
	})
	return id, err
}

// WaitBranch waits until the API shows branch at commit. Gitea updates its branch table asynchronously
// after a push (RECIPES.md: 80-300 ms), and pull requests cannot be opened before.
func (c *Client) WaitBranch(ctx context.Context, repo Repo, branch, commit string) error {
	var last string
	err := c.poll(ctx, fmt.Sprintf("branch %s of %s to show commit %s", branch, repo, short(commit)), func(ctx context.Context) (bool, error) {
		id, err := c.BranchCommit(ctx, repo, branch)
		if errors.Is(err, ErrNotFound) {
			last = "(no branch yet)"
			return false, nil
		}
		if errors.Is(err, ErrServer) {
			// Right after the first push into an empty repository, Gitea 1.26.4 can answer a branch query
			// with a 500 (a nil repository handle in routers/api/v1/repo/branch.go) until it has marked
			// the repository non-empty: not yet.
			last = "(server error: " + err.Error() + ")"
			return false, nil
		}
		if err != nil {
			return false, err
		}
		last = id
		return id == commit, nil
	})
	if err != nil {
		return fmt.Errorf("%w (it shows %s)", err, short(last))
	}
	return nil
}

// poll calls check every AsyncPoll until it reports done, fails, or AsyncTimeout (or ctx) ends.
func (c *Client) poll(ctx context.Context, what string, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.profile.AsyncTimeout)
	defer cancel()
	tick := time.NewTicker(c.profile.AsyncPoll)
	defer tick.Stop()
	for {
		done, err := check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("gitserver: waiting for %s: %w (last: %v)", what, ctx.Err(), err)
			}
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gitserver: waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// shorten keeps the first line of an API error, at most 300 bytes: Gitea puts whole panic traces into 500
// answers. The original stays in the chain for errors.Is/As.
func shorten(err error) error {
	msg := err.Error()
	cut := msg
	if i := strings.IndexByte(cut, '\n'); i >= 0 {
		cut = cut[:i]
	}
	if len(cut) > 300 {
		cut = cut[:300]
	}
	if cut == msg {
		return err
	}
	return &redactedError{msg: cut + " [...]", err: err}
}

// ErrServer is wrapped when Gitea answers 5xx.
var ErrServer = errors.New("gitea server error")
