// Package gitserver runs a real Gitea (v1.26.4, from the tool cache) as a local process and drives it the way
// a platform team drives GitHub or Azure DevOps: organizations, private repositories, users with the three
// personas of the Arc CI/CD guidance (cluster operator, application operator, application developer) and
// the access each has, branch protection with required approvals, webhooks signed with a secret, pull
// requests (open, approve, merge), and pushing a local directory as a commit over HTTP with a token (go-git).
//
// Start generates app.ini (sqlite, loopback only, a port the OS assigns, Gitea's en-US translation copied
// into the state directory), migrates the database, creates an admin user and its token, starts `gitea web`
// in its own process group and returns once /api/v1/version answers with the pinned version and the token
// is accepted. Stop, a failed Start, and the death of the calling process (Pdeathsig) all end the whole
// process group. Tokens and passwords never appear in logs or errors (see redact.go).
//
// Every helper that depends on one of Gitea's asynchronous steps waits for it by polling with the profile's
// interval: a pushed branch visible through the API, a pull request's mergeability computed, a webhook
// delivered (Receiver). Seed pushes repositories from local folders as the twin seeds them (organization,
// persona teams, a reader user, a commit per branch); the layouts of examples/repos/ are loaded with
// LoadLayout and pushed with Seed too (Layout.SeedSpec).
//
// The package owns the Git server only. It imports tools/toolcache and twin/internal/procgroup (which runs
// `gitea web` in its own process group, as the twin's other child processes run) and no other package of
// the project; it must not import reconciler/, scenarios/, cmd/ or other twin packages (the twin composes it).
package gitserver
