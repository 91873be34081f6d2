package gitserver

import (
	"context"
	"fmt"

	"code.gitea.io/sdk/gitea"
)

// CommitStatus is one status set on a commit (what Flux's gitea Provider posts, shown on the commit and on
// pull requests containing it).
type CommitStatus struct {
	Context     string // e.g. "kustomization/platform-dev-infrastructure/0c9c2e41"
	State       string // "pending", "success", "error", "failure" or "warning"
	Description string
	Creator     string
}

// CommitStatuses lists the statuses of a commit (newest first, as Gitea lists them).
func (c *Client) CommitStatuses(ctx context.Context, repo Repo, sha string) ([]CommitStatus, error) {
	if err := repo.validate(); err != nil {
		return nil, err
	}
	var out []CommitStatus
	err := c.call(ctx, fmt.Sprintf("list the statuses of commit %.12s of %s", sha, repo), func(g *gitea.Client) (*gitea.Response, error) {
		sts, resp, err := g.ListStatuses(repo.Owner, repo.Name, sha, gitea.ListStatusesOption{ListOptions: gitea.ListOptions{PageSize: 50}})
		for _, s := range sts {
			cs := CommitStatus{Context: s.Context, State: string(s.State), Description: s.Description}
			if s.Creator != nil {
				cs.Creator = s.Creator.UserName
			}
			out = append(out, cs)
		}
		return resp, err
	})
	return out, err
}

// AddCollaborator gives a user access to one repository (read or write), as a repository admin adds a
// bot account: Flux's gitea Provider needs write access to post commit statuses.
func (c *Client) AddCollaborator(ctx context.Context, repo Repo, user string, a Access) error {
	if err := repo.validate(); err != nil {
		return err
	}
	if a != ReadAccess && a != WriteAccess {
		return fmt.Errorf("gitserver: collaborator %s on %s: access %q: %w; use %q or %q", user, repo, a, ErrInvalidOptions, ReadAccess, WriteAccess)
	}
	mode := gitea.AccessMode(a)
	return c.call(ctx, fmt.Sprintf("add %s as a %s collaborator of %s", user, a, repo), func(g *gitea.Client) (*gitea.Response, error) {
		return g.AddCollaborator(repo.Owner, repo.Name, user, gitea.AddCollaboratorOption{Permission: &mode})
	})
}
