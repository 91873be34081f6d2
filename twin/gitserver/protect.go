package gitserver

import (
	"context"
	"fmt"

	"code.gitea.io/sdk/gitea"
)

// Protection is a branch policy: the guidance's "branch policies ... to enforce peer review or approvals
// for environments" (../shared/seeds/003_f1b5a216b380a00b.txt).
type Protection struct {
	// RequiredApprovals is how many approvals a pull request needs before it can be merged; a negative value
	// means the profile's RequiredApprovals.
	RequiredApprovals int
	// ApproverTeams are the teams whose approvals count. Empty means every user with write access.
	ApproverTeams []string
	// MergeTeams may merge pull requests into the branch; empty means every user with write access.
	MergeTeams []string
	// PushTeams may push to the branch directly; empty means nobody: every change is a pull request.
	PushTeams []string
	// DismissStaleApprovals drops approvals when new commits are pushed to the pull request.
	DismissStaleApprovals bool
}

// MaintainerProtection is the policy Seed applies with SeedSpec.Protect: every change through a pull request, approved by the
// profile's number of maintainers (the personas with write access to the repository's layers) and merged by
// a maintainer.
func MaintainerProtection(layers []Layer) Protection {
	var teams []string
	for _, p := range Maintainers(layers) {
		teams = append(teams, TeamName(p, WriteAccess))
	}
	return Protection{RequiredApprovals: -1, ApproverTeams: teams, MergeTeams: teams, DismissStaleApprovals: true}
}

// ProtectBranch applies p to branch. A direct push to the branch by anyone outside PushTeams is then
// rejected by Gitea's pre-receive hook. The branch need not exist yet (the rule matches by name).
func (c *Client) ProtectBranch(ctx context.Context, repo Repo, branch string, p Protection) error {
	if err := repo.validate(); err != nil {
		return err
	}
	if branch == "" {
		return fmt.Errorf("gitserver: protect a branch of %s: branch name is empty: %w", repo, ErrInvalidOptions)
	}
	n := p.RequiredApprovals
	if n < 0 {
		n = c.profile.RequiredApprovals
	}
	opt := gitea.CreateBranchProtectionOption{
		RuleName:                 branch,
		EnablePush:               len(p.PushTeams) > 0,
		EnablePushWhitelist:      len(p.PushTeams) > 0,
		PushWhitelistTeams:       p.PushTeams,
		EnableMergeWhitelist:     len(p.MergeTeams) > 0,
		MergeWhitelistTeams:      p.MergeTeams,
		RequiredApprovals:        int64(n),
		EnableApprovalsWhitelist: len(p.ApproverTeams) > 0,
		ApprovalsWhitelistTeams:  p.ApproverTeams,
		BlockOnRejectedReviews:   true,
		DismissStaleApprovals:    p.DismissStaleApprovals,
		// Admins are held to the same rules: the twin models the policy, not a way around it.
		BlockAdminMergeOverride: true,
	}
	return c.call(ctx, fmt.Sprintf("protect branch %s of %s", branch, repo), func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.CreateBranchProtection(repo.Owner, repo.Name, opt)
		return resp, err
	})
}
