package gitserver

import (
	"context"
	"fmt"

	"code.gitea.io/sdk/gitea"
)

// PullRequestOptions open a pull request from Head into Base.
type PullRequestOptions struct {
	Head  string // source branch
	Base  string // target branch
	Title string
	Body  string
}

// PullRequest is the state of a pull request.
type PullRequest struct {
	Index     int64
	State     string // "open" or "closed"
	Mergeable bool
	Merged    bool
	// MergeCommit is the commit the merge made on Base, once merged.
	MergeCommit string
	// HeadCommit is the commit the pull request's head branch points at.
	HeadCommit string
}

// OpenPullRequest opens a pull request and returns its index. Head must already be visible through the
// API (PushDir waits for that).
func (c *Client) OpenPullRequest(ctx context.Context, repo Repo, o PullRequestOptions) (int64, error) {
	if err := repo.validate(); err != nil {
		return 0, err
	}
	if o.Head == "" || o.Base == "" || o.Title == "" {
		return 0, fmt.Errorf("gitserver: open a pull request on %s: head %q, base %q and title %q must all be set: %w", repo, o.Head, o.Base, o.Title, ErrInvalidOptions)
	}
	var index int64
	err := c.call(ctx, fmt.Sprintf("open a pull request %s -> %s on %s", o.Head, o.Base, repo), func(g *gitea.Client) (*gitea.Response, error) {
		pr, resp, err := g.CreatePullRequest(repo.Owner, repo.Name, gitea.CreatePullRequestOption{Head: o.Head, Base: o.Base, Title: o.Title, Body: o.Body})
		if err == nil {
			index = pr.Index
		}
		return resp, err
	})
	return index, err
}

// GetPullRequest returns a pull request's state.
func (c *Client) GetPullRequest(ctx context.Context, repo Repo, index int64) (PullRequest, error) {
	var out PullRequest
	err := c.call(ctx, fmt.Sprintf("get pull request #%d of %s", index, repo), func(g *gitea.Client) (*gitea.Response, error) {
		pr, resp, err := g.GetPullRequest(repo.Owner, repo.Name, index)
		if err != nil {
			return resp, err
		}
		out = PullRequest{Index: pr.Index, State: string(pr.State), Mergeable: pr.Mergeable, Merged: pr.HasMerged}
		if pr.MergedCommitID != nil {
			out.MergeCommit = *pr.MergedCommitID
		}
		if pr.Head != nil {
			out.HeadCommit = pr.Head.Sha
		}
		return resp, nil
	})
	return out, err
}

// Approve submits an approving review. Gitea refuses (ErrForbidden) an approval by the pull request's
// author; an approval by someone outside the branch's approvers is accepted but does not count.
func (c *Client) Approve(ctx context.Context, repo Repo, index int64, body string) error {
	pr, err := c.GetPullRequest(ctx, repo, index)
	if err != nil {
		return err
	}
	return c.call(ctx, fmt.Sprintf("approve pull request #%d of %s", index, repo), func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.CreatePullReview(repo.Owner, repo.Name, index, gitea.CreatePullReviewOptions{
			State: gitea.ReviewStateApproved, Body: body, CommitID: pr.HeadCommit,
		})
		return resp, err
	})
}

// MergeOptions choose how to merge.
type MergeOptions struct {
	// Style is "merge" (a merge commit, the default), "rebase", "rebase-merge" or "squash".
	Style string
	// Message is the merge commit message; Gitea's default when empty.
	Message string
	// DeleteBranch deletes the head branch after the merge.
	DeleteBranch bool
}

// Merge waits until Gitea has computed that the pull request can be merged (an asynchronous check after
// every push), merges it and returns the merge commit. It wraps ErrForbidden when the branch policy refuses
// the merge, e.g. too few approvals, or the caller may not merge.
func (c *Client) Merge(ctx context.Context, repo Repo, index int64, o MergeOptions) (string, error) {
	style := gitea.MergeStyle(o.Style)
	if style == "" {
		style = gitea.MergeStyleMerge
	}
	switch style {
	case gitea.MergeStyleMerge, gitea.MergeStyleRebase, gitea.MergeStyleRebaseMerge, gitea.MergeStyleSquash:
	default:
		return "", fmt.Errorf("gitserver: merge style %q: %w; use merge, rebase, rebase-merge or squash", o.Style, ErrInvalidOptions)
	}
	var pr PullRequest
	err := c.poll(ctx, fmt.Sprintf("pull request #%d of %s to be mergeable", index, repo), func(ctx context.Context) (bool, error) {
		var err error
		pr, err = c.GetPullRequest(ctx, repo, index)
		if err != nil {
			return false, err
		}
		if pr.Merged || pr.State != "open" {
			return false, fmt.Errorf("gitserver: merge pull request #%d of %s: it is %s (merged %v): %w", index, repo, pr.State, pr.Merged, ErrInvalidOptions)
		}
		return pr.Mergeable, nil
	})
	if err != nil {
		return "", err
	}
	del := o.DeleteBranch
	err = c.call(ctx, fmt.Sprintf("merge pull request #%d of %s", index, repo), func(g *gitea.Client) (*gitea.Response, error) {
		ok, resp, err := g.MergePullRequest(repo.Owner, repo.Name, index, gitea.MergePullRequestOption{
			Style: style, Message: o.Message, DeleteBranchAfterMerge: &del, HeadCommitId: pr.HeadCommit,
		})
		if err == nil && !ok {
			status := "no response"
			if resp != nil {
				status = resp.Status
			}
			// 405: the branch policy refuses (approvals missing, caller not allowed to merge).
			return resp, fmt.Errorf("gitea answered %s without merging", status)
		}
		return resp, err
	})
	if err != nil {
		return "", err
	}
	pr, err = c.GetPullRequest(ctx, repo, index)
	if err != nil {
		return "", err
	}
	if !pr.Merged || pr.MergeCommit == "" {
		return "", fmt.Errorf("gitserver: pull request #%d of %s reports merged=%v, merge commit %q after a successful merge call", index, repo, pr.Merged, pr.MergeCommit)
	}
	return pr.MergeCommit, nil
}

// Fork copies repo into the client user's own namespace and returns the copy. A user who may only read a
// repository (an application developer in the application configuration) proposes a change by pushing to
// a fork and opening a pull request with Head "<user>:<branch>". Forking is asynchronous in Gitea only for
// large repositories; the fork's branches are polled until they appear.
func (c *Client) Fork(ctx context.Context, repo Repo) (Repo, error) {
	if err := repo.validate(); err != nil {
		return Repo{}, err
	}
	var fork Repo
	err := c.call(ctx, "fork "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		r, resp, err := g.CreateFork(repo.Owner, repo.Name, gitea.CreateForkOption{})
		if err == nil {
			fork = Repo{Owner: r.Owner.UserName, Name: r.Name}
		}
		return resp, err
	})
	if err != nil {
		return Repo{}, err
	}
	def, err := c.DefaultBranch(ctx, repo)
	if err != nil {
		return Repo{}, err
	}
	want, err := c.BranchCommit(ctx, repo, def)
	if err != nil {
		return Repo{}, err
	}
	return fork, c.WaitBranch(ctx, fork, def, want)
}
