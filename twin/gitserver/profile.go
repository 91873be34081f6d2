package gitserver

import (
	"fmt"
	"time"
)

// Profile holds every limit, default and timing the Git server runs with. Change Version whenever a value
// changes, so results can say which profile they were measured under.
type Profile struct {
	// Version names this set of values.
	Version string
	// GiteaVersion is the Gitea release the tool cache builds (tools/toolcache/pins.go); the go-sdk is told
	// it up front instead of asking the server on every client.
	GiteaVersion string
	// AdminUser is the name of the site administrator Start creates.
	AdminUser string

	// ReadyTimeout bounds the wait for /api/v1/version after `gitea web` starts. RECIPES.md "Gitea from Go
	// modules": healthy in ~2.7 s on 2 cores; the bound leaves room for a loaded machine.
	ReadyTimeout time.Duration
	// ReadyPoll is the interval between readiness probes.
	ReadyPoll time.Duration
	// PortAttempts is how many free ports Start tries before giving up; see writeConfig: another process
	// can take the chosen port only in the moment before Gitea binds it, so a second attempt is rare.
	PortAttempts int
	// ProbeTimeout bounds one readiness probe, so a probe that hangs does not hide Gitea exiting.
	ProbeTimeout time.Duration
	// CommandTimeout bounds one bootstrap command (gitea migrate, gitea admin user create). Each takes about
	// a second on sqlite (RECIPES.md); the bound only turns a hang into an error.
	CommandTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it kills the process group.
	StopTimeout time.Duration
	// HammerTime is Gitea's [server] GRACEFUL_HAMMER_TIME: how long Gitea lets requests finish after
	// SIGTERM. Gitea's default is 60 s (Gitea config cheat sheet, [server]); the twin shortens it so Stop
	// finishes within StopTimeout.
	HammerTime time.Duration

	// AsyncPoll is the interval for waiting on Gitea's asynchronous steps. RECIPES.md: a pushed branch
	// appears 80-300 ms after the push.
	AsyncPoll time.Duration
	// AsyncTimeout bounds one such wait (branch visible, pull request mergeable, webhook delivered).
	AsyncTimeout time.Duration
	// RequestTimeout bounds one API call or one git push when the caller's context has no deadline.
	RequestTimeout time.Duration

	// WebhookDeliverTimeout is Gitea's [webhook] DELIVER_TIMEOUT, the time one delivery may take. 5 s is
	// Gitea's default (Gitea config cheat sheet, [webhook]).
	WebhookDeliverTimeout time.Duration

	// RequiredApprovals is the number of approvals a protected branch needs before a merge. The CI/CD
	// guidance asks for "a minimum number of required reviews" without a figure
	// (../shared/seeds/003_f1b5a216b380a00b.txt, "CI/CD, Container Image Update"); one reviewer other than
	// the author is the smallest peer review.
	RequiredApprovals int

	// LogLevel is Gitea's [log] LEVEL. Warn keeps per-request router lines out of Gitea's log file.
	LogLevel string
}

// DefaultProfile is the profile the twin uses unless a spec says otherwise.
func DefaultProfile() Profile {
	return Profile{
		Version:               "gitserver/v1",
		GiteaVersion:          "1.26.4",
		AdminUser:             "twin-admin",
		ReadyTimeout:          90 * time.Second,
		ReadyPoll:             100 * time.Millisecond,
		ProbeTimeout:          2 * time.Second,
		PortAttempts:          3,
		CommandTimeout:        2 * time.Minute,
		StopTimeout:           15 * time.Second,
		HammerTime:            5 * time.Second,
		AsyncPoll:             50 * time.Millisecond,
		AsyncTimeout:          60 * time.Second,
		RequestTimeout:        60 * time.Second,
		WebhookDeliverTimeout: 5 * time.Second,
		RequiredApprovals:     1,
		LogLevel:              "Warn",
	}
}

func (p Profile) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("gitserver: Profile.%s is %v: %w; %s (start from DefaultProfile())", field, v, ErrInvalidOptions, want)
	}
	switch {
	case p.Version == "":
		return bad("Version", `""`, "name the profile")
	case p.GiteaVersion == "":
		return bad("GiteaVersion", `""`, "give the Gitea release, e.g. 1.26.4")
	case p.AdminUser == "":
		return bad("AdminUser", `""`, "give the admin's user name")
	case p.ReadyTimeout <= 0, p.ReadyPoll <= 0, p.ProbeTimeout <= 0, p.CommandTimeout <= 0, p.StopTimeout <= 0, p.HammerTime <= 0,
		p.AsyncPoll <= 0, p.AsyncTimeout <= 0, p.RequestTimeout <= 0, p.WebhookDeliverTimeout <= 0:
		return fmt.Errorf("gitserver: a Profile timeout or interval is zero or negative: %w; every duration must be positive (start from DefaultProfile())", ErrInvalidOptions)
	case p.WebhookDeliverTimeout%time.Second != 0:
		return bad("WebhookDeliverTimeout", p.WebhookDeliverTimeout, "use whole seconds (Gitea reads DELIVER_TIMEOUT in seconds)")
	case p.PortAttempts < 1:
		return bad("PortAttempts", p.PortAttempts, "use 1 or more")
	case p.RequiredApprovals < 0:
		return bad("RequiredApprovals", p.RequiredApprovals, "use 0 or more")
	}
	switch p.LogLevel {
	case "Trace", "Debug", "Info", "Warn", "Error", "Fatal", "None":
	default:
		return bad("LogLevel", p.LogLevel, "use one of Trace, Debug, Info, Warn, Error, Fatal, None")
	}
	return nil
}
