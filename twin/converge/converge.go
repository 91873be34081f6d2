package converge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// Options configure a converge run.
type Options struct {
	// Root is the folder of the layout under validation. NewTwin with an empty Root runs the spec's own
	// repositories and artifacts; Running needs it.
	Root string
	// Configs are the layout's GitOps configurations (as reconciler/layout validated them); the wait
	// covers each of their Kustomizations.
	Configs []layout.Config
	// Timeout bounds the wait for Ready; zero derives it from the reconciler profile, the depth of the
	// dependsOn graph and the sources' sync wait (layout.ConvergeTimeout).
	Timeout time.Duration
	// Progress receives the stage's progress lines, and NewTwin's twin start-up; nil keeps it silent.
	Progress io.Writer
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// NewTwin starts the twin of specFile with the layout (o.Root) in place of the repositories and
// artifact tags its GitOps configurations sync -- the same repository names and branches, so the spec's
// configurations are used as they are -- waits until every Kustomization is Ready at the seeded
// revision, and takes the twin down on every path, Ctrl-C (ctx) included. Times to Ready are measured
// from the end of the twin's start-up, whose last step creates the configurations.
func NewTwin(ctx context.Context, specFile string, o Options) (res *layout.ConvergeResult, findings []layout.Finding, err error) {
	spec, err := twin.LoadSpec(specFile)
	if err != nil {
		return nil, nil, err
	}
	refs, arts, err := targets(spec)
	if err != nil {
		return nil, nil, err
	}
	if o.Root != "" {
		abs, err := filepath.Abs(o.Root)
		if err != nil {
			return nil, nil, err
		}
		// In place of each repository the configurations sync: the same name and branches, the layout
		// under validation as every branch's content.
		for i := range spec.Spec.Git.Repos {
			r := &spec.Spec.Git.Repos[i]
			var branches []string
			for _, ref := range sortedRefs(refs) {
				if ref.repo == r.Name {
					branches = append(branches, ref.branch)
				}
			}
			if len(branches) == 0 {
				continue
			}
			r.Path, r.Branches = "", map[string]string{}
			for _, b := range branches {
				r.Branches[b] = abs
			}
		}
		// Each artifact tag the configurations sync is packed from the layout instead.
		for i := range spec.Spec.Artifacts {
			a := &spec.Spec.Artifacts[i]
			if _, ok := arts[artifactRef{a.Repository, a.Tag}]; ok {
				a.Path = abs
			}
		}
	}
	stateDir, err := os.MkdirTemp("", "hybridtwin-converge-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(stateDir)
	w := o.progress()
	fmt.Fprintf(w, "converge: starting twin %s (state %s)\n", spec.Metadata.Name, stateDir)
	t, err := twin.Up(ctx, spec, twin.Options{StateDir: stateDir, Progress: o.Progress})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("interrupted; nothing is left running: %w", err)
		}
		return nil, nil, fmt.Errorf("converge: %w", err)
	}
	start := time.Now()
	defer func() {
		fmt.Fprintln(w, "converge: stopping the twin...")
		if derr := t.Down(context.WithoutCancel(ctx), false); derr != nil {
			err = errors.Join(err, fmt.Errorf("stop the twin: %w", derr))
			return
		}
		fmt.Fprintln(w, "converge: twin stopped")
	}()
	token, err := os.ReadFile(t.Info().GiteaToken)
	if err != nil {
		return nil, nil, fmt.Errorf("read the twin's Gitea token: %w", err)
	}
	git, err := gitserver.NewClient(t.GiteaURL(), gitserver.DefaultProfile().AdminUser, strings.TrimSpace(string(token)), gitserver.DefaultProfile())
	if err != nil {
		return nil, nil, err
	}
	res = &layout.ConvergeResult{Twin: spec.Metadata.Name, Mode: "up"}
	commits := map[string]string{}
	for _, ref := range sortedRefs(refs) {
		commit, err := git.BranchCommit(ctx, gitserver.Repo{Owner: spec.Spec.Git.Org, Name: ref.repo}, ref.branch)
		if err != nil {
			return nil, nil, fmt.Errorf("converge: the seeded commit of %s@%s: %w", ref.repo, ref.branch, err)
		}
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: spec.Spec.Git.Org + "/" + ref.repo, Branch: ref.branch, Commit: commit})
		for _, cfg := range refs[ref] {
			commits[cfg] = commit
		}
	}
	// An OCI source reports tag@digest (Flux's OCIRepository revision): the digest Up pushed.
	reg := registry.NewClient(t.RegistryHost())
	for _, a := range sortedArtifacts(arts) {
		m, err := reg.Manifest(ctx, a.repo, a.tag)
		if err != nil {
			return nil, nil, fmt.Errorf("converge: the pushed artifact %s:%s: %w", a.repo, a.tag, err)
		}
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: "oci://" + t.RegistryHost() + "/" + a.repo, Branch: a.tag, Commit: m.Digest})
		for _, cfg := range arts[a] {
			commits[cfg] = m.Digest
		}
	}
	return wait(ctx, o, res, localStatus{t}, commits, start, 0)
}

// Running pushes the layout (o.Root) to the twin running in stateDir, whose spec is specFile, as a new
// commit on every branch its GitOps configurations sync and a new artifact under every spec.artifacts
// tag they sync, and waits until every Kustomization is Ready at it. The wait includes the
// configurations' sync interval: a source notices a push at its next sync. The twin keeps the layout.
func Running(ctx context.Context, stateDir, specFile string, o Options) (*layout.ConvergeResult, []layout.Finding, error) {
	if o.Root == "" {
		return nil, nil, errors.New("converge on a running twin pushes the layout: give its folder (Options.Root)")
	}
	remote, err := twin.Dial(stateDir)
	if err != nil {
		return nil, nil, err
	}
	defer remote.Close()
	info, err := twin.ReadInfo(stateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("read the twin's %s: %w", twin.InfoFile, err)
	}
	spec, err := twin.LoadSpec(specFile)
	if err != nil {
		return nil, nil, err
	}
	refs, arts, err := targets(spec)
	if err != nil {
		return nil, nil, err
	}
	token, err := os.ReadFile(info.GiteaToken)
	if err != nil {
		return nil, nil, fmt.Errorf("read the twin's Gitea token: %w", err)
	}
	git, err := gitserver.NewClient(info.GiteaURL, gitserver.DefaultProfile().AdminUser, strings.TrimSpace(string(token)), gitserver.DefaultProfile())
	if err != nil {
		return nil, nil, err
	}
	// The sources notice the push at their next sync: the longest interval of the configurations (the
	// Arc default when the spec sets none).
	var sourceWait time.Duration
	for _, g := range spec.Spec.GitOps {
		iv := time.Duration(arc.DefaultSyncIntervalSeconds) * time.Second
		if g.SyncIntervalInSeconds > 0 {
			iv = time.Duration(g.SyncIntervalInSeconds) * time.Second
		}
		sourceWait = max(sourceWait, iv)
	}
	w := o.progress()
	start := time.Now()
	res := &layout.ConvergeResult{Twin: info.Name, Mode: "running"}
	commits := map[string]string{}
	for _, ref := range sortedRefs(refs) {
		repo := gitserver.Repo{Owner: spec.Spec.Git.Org, Name: ref.repo}
		pr, err := git.Push(ctx, gitserver.PushRequest{Repo: repo, Branch: ref.branch, Dir: o.Root,
			Message: "hybridtwin validate --converge: the layout under validation", Rewrite: gitserver.RegistryRewrite(info.Registry)})
		if err != nil {
			return nil, nil, fmt.Errorf("converge: push the layout to %s@%s: %w", repo, ref.branch, err)
		}
		fmt.Fprintf(w, "converge: pushed the layout to %s@%s (%.12s)\n", repo, ref.branch, pr.Commit)
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: repo.String(), Branch: ref.branch, Commit: pr.Commit})
		for _, cfg := range refs[ref] {
			commits[cfg] = pr.Commit
		}
	}
	// An OCI source: the layout packed as `flux push artifact` does and pushed under the tag it syncs; it
	// reports tag@digest.
	if len(arts) > 0 {
		from, to := []byte(gitserver.PlaceholderRegistry), []byte(info.Registry)
		files, err := fluxartifact.ReadDir(o.Root, func(data []byte) []byte { return bytes.ReplaceAll(data, from, to) })
		if err != nil {
			return nil, nil, fmt.Errorf("converge: %w", err)
		}
		img, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file://" + o.Root})
		if err != nil {
			return nil, nil, fmt.Errorf("converge: %w", err)
		}
		reg := registry.NewClient(info.Registry)
		for _, a := range sortedArtifacts(arts) {
			pushed, err := reg.Push(ctx, img, a.repo, a.tag)
			if err != nil {
				return nil, nil, fmt.Errorf("converge: push the layout to %s/%s:%s: %w", info.Registry, a.repo, a.tag, err)
			}
			fmt.Fprintf(w, "converge: pushed the layout to %s/%s:%s (%.19s)\n", info.Registry, a.repo, a.tag, pushed.Digest)
			res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: "oci://" + info.Registry + "/" + a.repo, Branch: a.tag, Commit: pushed.Digest})
			for _, cfg := range arts[a] {
				commits[cfg] = pushed.Digest
			}
		}
	}
	return wait(ctx, o, res, remoteStatus{remote}, commits, start, sourceWait)
}

// wait waits for every Kustomization of o.Configs to become Ready at its configuration's commit, and
// returns res completed with the wait's outcome, and the failures as findings.
func wait(ctx context.Context, o Options, res *layout.ConvergeResult, src layout.StatusSource,
	commits map[string]string, start time.Time, sourceWait time.Duration) (*layout.ConvergeResult, []layout.Finding, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = layout.ConvergeTimeout(o.Configs, layout.DefaultProfile(), sourceWait)
	}
	n := 0
	for _, cfg := range o.Configs {
		n += len(cfg.Kustomizations)
	}
	w := o.progress()
	fmt.Fprintf(w, "converge: waiting up to %s for %d Kustomization(s) to become Ready\n", timeout, n)
	out, findings, err := layout.WaitConverge(ctx, src, o.Configs, layout.ConvergeOptions{Commits: commits, Start: start,
		Timeout: timeout, SourceWait: sourceWait, Clock: clock.RealClock{}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("interrupted while waiting for convergence: %w", ctx.Err())
		}
		return nil, nil, fmt.Errorf("converge: %w", err)
	}
	out.Twin, out.Mode, out.Pushed = res.Twin, res.Mode, res.Pushed
	fmt.Fprintf(w, "converge: done in %s\n", out.Elapsed)
	return out, findings, nil
}
