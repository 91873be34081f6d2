package helm

import (
	"context"
	"errors"
	"time"

	"helm.sh/helm/v4/pkg/action"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// Test runs the release's test hooks (`helm test`): the hooks named in include (all when empty),
// less those in exclude, each created and waited for until its Pod or Job completes, within timeout.
// It returns the release record as tested (its hooks carry each test's last run), also when a test
// failed, with the failure.
func (a *Actions) Test(ctx context.Context, timeout time.Duration, include, exclude []string) (*release.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.g.Invalidate()
	t := action.NewReleaseTesting(a.cfg)
	t.Namespace, t.Timeout = a.rel.Namespace, timeout
	if len(include) > 0 {
		t.Filters[action.IncludeNameFilter] = include
	}
	if len(exclude) > 0 {
		t.Filters[action.ExcludeNameFilter] = exclude
	}
	r, shutdown, err := t.Run(a.rel.Name)
	if shutdown != nil {
		err = errors.Join(err, shutdown())
	}
	rel, cerr := v1(r)
	return rel, errors.Join(err, cerr)
}

// TestHooks are the release's test hooks by name, with the phase of their last run ("" when they
// never ran).
func TestHooks(rel *release.Release) map[string]*release.HookExecution {
	out := map[string]*release.HookExecution{}
	for _, h := range rel.Hooks {
		for _, e := range h.Events {
			if e == release.HookTest {
				run := h.LastRun
				out[h.Name] = &run
			}
		}
	}
	return out
}
