package layout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
)

// Compliance states of an Arc fluxConfiguration (Microsoft.KubernetesConfiguration fluxConfigurations
// properties.complianceState).
const (
	Compliant    = "Compliant"
	NonCompliant = "Non-Compliant"
	Pending      = "Pending"
	Suspended    = "Suspended"
)

// ConfigStatus is one GitOps configuration's state on the twin, as Azure reports it.
type ConfigStatus struct {
	Cluster string
	Name    string
	// Compliance is the configuration's complianceState.
	Compliance string
	// Commit is the synced source revision (sourceSyncedCommitId, Flux's "<ref>@sha1:<commit>").
	Commit string
	// Message is the agent's error message: "Kind/name: message" per failing object, "; "-separated.
	Message string
	// Kustomizations are the configuration's Kustomizations as the Arc agent reports them
	// (properties.statuses). When a twin reports them, times to Ready are per Kustomization; without
	// them, per configuration.
	Kustomizations []KustomizationStatus
}

// KustomizationStatus is one Kustomization of a configuration as the Arc agent reports it.
type KustomizationStatus struct {
	// Name is the Flux Kustomization's name (<configuration>-<kustomization>).
	Name string
	// Compliance is Compliant (Ready), Non-Compliant (failed) or Pending.
	Compliance string
	// Message is its Ready condition's message ("Applied revision: main@sha1:<commit>" when Ready).
	Message string
	// Namespace and AppliedBy ("<namespace>/<name>") are set for a Kustomization that one of the
	// configuration's Kustomizations applied (the bootstrap layout's nested ones), which the Arc agent
	// lists too.
	Namespace string
	AppliedBy string
}

// StatusSource reads the twin's GitOps configurations; cmd/hybridtwin adapts a running twin to it.
type StatusSource interface {
	GitOps(ctx context.Context) ([]ConfigStatus, error)
}

// ConvergeOptions tune WaitConverge.
type ConvergeOptions struct {
	// Commits is the commit each configuration must sync before its state counts, by "cluster/name".
	// A configuration without one counts at any revision.
	Commits map[string]string
	// Start is when the revision was pushed; times to Ready are measured from it.
	Start time.Time
	// Timeout bounds the wait; Profile.Converge.Timeout(depth of the dependsOn graph, SourceWait) when
	// zero.
	Timeout time.Duration
	// SourceWait is how long the sources may take to notice the push (the GitRepository interval on a
	// running twin; zero on a twin that was just started and fetches at once).
	SourceWait time.Duration
	// Poll is the status poll interval; Profile.Converge.Poll when zero.
	Poll time.Duration
	// Profile holds the timings; DefaultProfile() when its Name is empty.
	Profile Profile
	// Clock measures the times; the real clock when nil.
	Clock clock.Clock
}

// ConvergeResult is the converge stage's outcome.
type ConvergeResult struct {
	// Twin names the twin, Mode how it was reached: "up" (started for the validation) or "running".
	Twin string `json:"twin"`
	Mode string `json:"mode"`
	// Pushed are the revisions pushed to the twin's Gitea.
	Pushed []PushedRevision `json:"pushed"`
	// Timeout is the bound that applied; Elapsed how long the wait took.
	Timeout string `json:"timeout"`
	Elapsed string `json:"elapsed"`
	// Resolution says what a time to Ready measures: "kustomization" -- the twin reports each
	// Kustomization's state (the Arc agent's properties.statuses), so each time is when that
	// Kustomization was first seen Ready at the pushed revision -- or "configuration" when some
	// configuration reported no per-Kustomization state: its Kustomizations' times are when the whole
	// configuration became Compliant (an upper bound).
	Resolution     string              `json:"resolution"`
	Kustomizations []KustomizationTime `json:"kustomizations"`
}

// PushedRevision is one branch the layout was pushed to.
type PushedRevision struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Commit string `json:"commit"`
}

// KustomizationTime is one Kustomization's outcome on the twin.
type KustomizationTime struct {
	Cluster       string `json:"cluster"`
	Configuration string `json:"configuration"`
	Kustomization string `json:"kustomization"`
	// AppliedBy is set for a nested Kustomization ("<namespace>/<name>" of the one that applied it; its
	// own name is then "<namespace>/<name>" too): a Kustomization the layout's Kustomizations apply.
	AppliedBy string `json:"appliedBy,omitempty"`
	// State is Ready, Failed, Blocked (it depends on a Kustomization that failed), Unknown (its
	// configuration is Non-Compliant because of another Kustomization, and it is itself neither Ready
	// nor failed, or the twin reports no status of its own) or TimedOut.
	State string `json:"state"`
	// ReadyAfter is the time from the push to Ready, in seconds (0 unless State is Ready).
	ReadyAfterSeconds float64 `json:"readyAfterSeconds,omitempty"`
	Message           string  `json:"message,omitempty"`
}

// Kustomization outcomes.
const (
	StateReady    = "Ready"
	StateFailed   = "Failed"
	StateBlocked  = "Blocked"
	StateUnknown  = "Unknown"
	StateTimedOut = "TimedOut"
)

// ConvergeTimeout is the default bound for configs: the converge profile's Timeout for the longest
// dependsOn chain of any cluster, plus sourceWait.
func ConvergeTimeout(configs []Config, p Profile, sourceWait time.Duration) time.Duration {
	if p.Name == "" {
		p = DefaultProfile()
	}
	return p.Converge.Timeout(DependsOnDepth(configs), sourceWait)
}

// DependsOnDepth is the number of Kustomizations on the longest dependsOn chain (1 without dependsOn;
// edges to missing Kustomizations and cycles are not followed).
func DependsOnDepth(configs []Config) int {
	deps := map[ksKey][]ksKey{}
	for _, c := range configs {
		for _, k := range c.Kustomizations {
			key := ksKey{c.Cluster, k.Namespace(), k.Name()}
			ds, _, _ := unstructured.NestedSlice(k.Object, "spec", "dependsOn")
			deps[key] = nil
			for _, d := range ds {
				dm, _ := d.(map[string]any)
				ns := str(dm, "namespace")
				if ns == "" {
					ns = k.Namespace()
				}
				deps[key] = append(deps[key], ksKey{c.Cluster, ns, str(dm, "name")})
			}
		}
	}
	memo := map[ksKey]int{}
	var depth func(k ksKey, seen map[ksKey]bool) int
	depth = func(k ksKey, seen map[ksKey]bool) int {
		if d, ok := memo[k]; ok {
			return d
		}
		if seen[k] {
			return 0
		}
		seen[k] = true
		best := 0
		for _, d := range deps[k] {
			if _, ok := deps[d]; ok {
				best = max(best, depth(d, seen))
			}
		}
		delete(seen, k)
		memo[k] = best + 1
		return best + 1
	}
	most := 0
	for k := range deps {
		most = max(most, depth(k, map[ksKey]bool{}))
	}
	return max(most, 1)
}

// WaitConverge polls src until every configuration in configs has synced its expected commit and is
// Compliant or Non-Compliant, or the timeout passes. It returns the per-Kustomization outcome and a
// HT013 finding for every Kustomization that did not become Ready. The error is set only when the twin
// could not be read at all, or ctx ended (Ctrl-C).
func WaitConverge(ctx context.Context, src StatusSource, configs []Config, o ConvergeOptions) (*ConvergeResult, []Finding, error) {
	if o.Profile.Name == "" {
		o.Profile = DefaultProfile()
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if o.Timeout <= 0 {
		o.Timeout = ConvergeTimeout(configs, o.Profile, o.SourceWait)
	}
	if o.Poll <= 0 {
		o.Poll = o.Profile.Converge.Poll
	}
	if o.Start.IsZero() {
		o.Start = clk.Now()
	}
	type observed struct {
		state   string // last compliance seen at the expected commit
		message string
		since   time.Time // when state was first seen (of this run of equal observations)
		seen    int       // consecutive polls that showed state
	}
	see := func(o *observed, state, message string, now time.Time) {
		if state != o.state {
			o.since, o.seen = now, 0
		}
		o.seen++
		o.state, o.message = state, message
	}
	type entry struct {
		cfg *Config
		key string
		observed
		// ks are the Kustomizations' own states, by Flux name, when the twin reports them; nested ones
		// by "<namespace>/<name>", with who applied them in nested.
		ks     map[string]*observed
		nested map[string]string
	}
	confirm := max(o.Profile.Converge.Confirm, 1)
	entries := map[string]*entry{}
	var order []string
	for i := range configs {
		c := &configs[i]
		key := c.Cluster + "/" + c.Name
		if _, ok := entries[key]; ok {
			continue
		}
		entries[key] = &entry{cfg: c, key: key}
		order = append(order, key)
	}
	sort.Strings(order)
	deadline := o.Start.Add(o.Timeout)
	var lastErr error
	for {
		sts, err := src.GitOps(ctx)
		now := clk.Now()
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			lastErr = err
		} else {
			lastErr = nil
			for _, st := range sts {
				e := entries[st.Cluster+"/"+st.Name]
				if e == nil {
					continue
				}
				want := o.Commits[e.key]
				if want != "" && !strings.Contains(st.Commit, want) {
					continue // still on an older revision
				}
				if want != "" && st.Compliance == NonCompliant && staleRevision(st.Message, want) {
					continue // a failure of the previous revision, not yet reconciled again
				}
				see(&e.observed, st.Compliance, st.Message, now)
				for _, k := range st.Kustomizations {
					if want != "" && staleRevision(k.Message, want) {
						continue // Ready (or failed) at the previous revision
					}
					if e.ks == nil {
						e.ks = map[string]*observed{}
					}
					name := k.Name
					if k.AppliedBy != "" {
						name = k.Namespace + "/" + k.Name
						if e.nested == nil {
							e.nested = map[string]string{}
						}
						e.nested[name] = k.AppliedBy
					}
					o := e.ks[name]
					if o == nil {
						o = &observed{}
						e.ks[name] = o
					}
					see(o, k.Compliance, k.Message, now)
				}
			}
		}
		settled := true
		for _, k := range order {
			e := entries[k]
			if (e.state != Compliant && e.state != NonCompliant) || e.seen < confirm {
				settled = false
			}
		}
		if settled || !now.Before(deadline) {
			break
		}
		t := clk.NewTimer(o.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C():
		}
	}
	if lastErr != nil {
		allUnknown := true
		for _, k := range order {
			if entries[k].state != "" {
				allUnknown = false
			}
		}
		if allUnknown {
			return nil, nil, fmt.Errorf("read the twin's GitOps status: %w", lastErr)
		}
	}
	elapsed := clk.Since(o.Start)
	res := &ConvergeResult{Timeout: o.Timeout.String(), Elapsed: elapsed.Round(time.Millisecond).String(), Resolution: "kustomization"}
	var findings []Finding
	for _, k := range order {
		e := entries[k]
		if e.ks == nil {
			res.Resolution = "configuration"
		}
		failing := failingObjects(e.message)
		blockedBy := blockers(e.cfg, failing)
		for _, ks := range e.cfg.Kustomizations {
			kt := KustomizationTime{Cluster: e.cfg.Cluster, Configuration: e.cfg.Name, Kustomization: ks.Name()}
			f := Finding{Rule: RuleConverge, Severity: Error, Cluster: e.cfg.Cluster, Configuration: e.cfg.Name,
				Kustomization: ks.Name(), File: ks.File, Line: ks.Line, Object: "Kustomization/" + ks.Namespace() + "/" + ks.Name()}
			own := e.ks[ks.Name()] // nil when the twin reports no state of its own
			switch {
			case own != nil && own.state == Compliant:
				kt.State = StateReady
				kt.ReadyAfterSeconds = own.since.Sub(o.Start).Seconds()
			case own != nil && own.state == NonCompliant && failing["Kustomization/"+ks.Name()] == "":
				kt.State, kt.Message = StateFailed, own.message
				f.Message = "not Ready on the twin: " + kt.Message
				f.Hint = "fix what the message names; `hybridtwin status` shows the configuration, the reconciler's events say more"
			case own == nil && e.state == Compliant:
				kt.State = StateReady
				kt.ReadyAfterSeconds = e.since.Sub(o.Start).Seconds()
			case e.state == NonCompliant && failing["Kustomization/"+ks.Name()] != "":
				kt.State, kt.Message = StateFailed, failing["Kustomization/"+ks.Name()]
				f.Message = "not Ready on the twin: " + kt.Message
				f.Hint = "fix what the message names; `hybridtwin status` shows the configuration, the reconciler's events say more"
			case e.state == NonCompliant && blockedBy[ks.Name()] != "":
				kt.State = StateBlocked
				kt.Message = fmt.Sprintf("waits on %s, which failed", blockedBy[ks.Name()])
				f.Message = "not Ready on the twin: it " + kt.Message
				f.Hint = fmt.Sprintf("fix %s; this Kustomization reconciles once its dependency is Ready", blockedBy[ks.Name()])
			case e.state == NonCompliant && failing["GitRepository/"+e.cfg.Name] != "":
				kt.State, kt.Message = StateFailed, "source: "+failing["GitRepository/"+e.cfg.Name]
				f.Message = "not Ready on the twin: its GitRepository failed: " + failing["GitRepository/"+e.cfg.Name]
				f.Hint = "check the repository URL, branch and credentials of the configuration"
			case e.state == NonCompliant && len(failing) == 0:
				kt.State, kt.Message = StateFailed, e.message
				f.Message = fmt.Sprintf("not Ready on the twin: configuration %s is Non-Compliant: %s", e.cfg.Name, e.message)
				f.Hint = "the Arc agent could not apply the configuration; fix what the message names"
			case e.state == NonCompliant:
				// Neither failing nor behind a failure, nor reported Ready: not a finding.
				kt.State = StateUnknown
				kt.Message = fmt.Sprintf("configuration %s is Non-Compliant because of %s; no status of its own", e.cfg.Name, strings.Join(sortedKeys(failing), ", "))
				if own != nil {
					kt.Message = fmt.Sprintf("%s (configuration %s is Non-Compliant because of %s)", orUnknown(own.state), e.cfg.Name, strings.Join(sortedKeys(failing), ", "))
				}
			default:
				kt.State = StateTimedOut
				kt.Message = fmt.Sprintf("configuration %s still %s after %s", e.cfg.Name, orUnknown(e.state), o.Timeout)
				if own != nil {
					kt.Message = fmt.Sprintf("still %s after %s (configuration %s: %s)", own.state, o.Timeout, e.cfg.Name, orUnknown(e.state))
					if own.message != "" {
						kt.Message += ": " + own.message
					}
				} else if e.message != "" {
					kt.Message += ": " + e.message
				}
				f.Message = "not Ready on the twin within the converge timeout: " + kt.Message
				f.Hint = "raise --converge-timeout if the layout is only slow (health checks, dependsOn chains), else look for a dependency that never becomes Ready"
			}
			if kt.State != StateReady && kt.State != StateUnknown {
				findings = append(findings, f)
			}
			res.Kustomizations = append(res.Kustomizations, kt)
		}
		// The nested Kustomizations the twin reported: Ready (with its time), failed, or still waiting.
		for _, name := range sortedKeys(e.nested) {
			own := e.ks[name]
			kt := KustomizationTime{Cluster: e.cfg.Cluster, Configuration: e.cfg.Name, Kustomization: name, AppliedBy: e.nested[name]}
			f := Finding{Rule: RuleConverge, Severity: Error, Cluster: e.cfg.Cluster, Configuration: e.cfg.Name,
				Kustomization: name, Object: "Kustomization/" + name}
			switch own.state {
			case Compliant:
				kt.State = StateReady
				kt.ReadyAfterSeconds = own.since.Sub(o.Start).Seconds()
			case NonCompliant:
				kt.State, kt.Message = StateFailed, own.message
				f.Message = fmt.Sprintf("not Ready on the twin (applied by Kustomization %s): %s", e.nested[name], own.message)
				f.Hint = "fix what the message names in the files this Kustomization builds; `kubectl describe kustomization` on the twin cluster shows its events"
			default:
				kt.State = StateTimedOut
				kt.Message = fmt.Sprintf("still %s after %s", orUnknown(own.state), o.Timeout)
				f.Message = fmt.Sprintf("not Ready on the twin within the converge timeout (applied by Kustomization %s): %s", e.nested[name], kt.Message)
				f.Hint = "raise --converge-timeout if the layout is only slow, else look for a dependency that never becomes Ready"
			}
			if kt.State != StateReady {
				findings = append(findings, f)
			}
			res.Kustomizations = append(res.Kustomizations, kt)
		}
	}
	return res, findings, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "without a status at the pushed revision"
	}
	return s
}

// failingObjects splits the Arc agent's message ("Kind/name: message; Kind/name: message") by object.
func failingObjects(msg string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(msg, "; ") {
		obj, m, ok := strings.Cut(part, ": ")
		if ok && strings.Contains(obj, "/") && !strings.Contains(obj, " ") {
			out[obj] = m
		}
	}
	return out
}

// blockers maps each Kustomization of c (by Flux name) that depends, directly or not, on a failing one
// to that failing Kustomization's name.
func blockers(c *Config, failing map[string]string) map[string]string {
	deps := map[string][]string{}
	for _, k := range c.Kustomizations {
		ds, _, _ := unstructured.NestedSlice(k.Object, "spec", "dependsOn")
		for _, d := range ds {
			dm, _ := d.(map[string]any)
			deps[k.Name()] = append(deps[k.Name()], str(dm, "name"))
		}
	}
	out := map[string]string{}
	var find func(name string, seen map[string]bool) string
	find = func(name string, seen map[string]bool) string {
		if seen[name] {
			return ""
		}
		seen[name] = true
		for _, d := range deps[name] {
			if failing["Kustomization/"+d] != "" {
				return d
			}
			if b := find(d, seen); b != "" {
				return b
			}
		}
		return ""
	}
	for _, k := range c.Kustomizations {
		if failing["Kustomization/"+k.Name()] != "" {
			continue
		}
		if b := find(k.Name(), map[string]bool{}); b != "" {
			out[k.Name()] = b
		}
	}
	return out
}

// staleRevision reports whether a failure message names a revision ("@sha1:<commit>") other than
// commit: the reconciler's apply and health failures name the revision they are about.
func staleRevision(msg, commit string) bool {
	i := strings.Index(msg, "@sha1:")
	if i < 0 {
		return false
	}
	rest := msg[i+len("@sha1:"):]
	n := 0
	for n < len(rest) && strings.ContainsRune("0123456789abcdef", rune(rest[n])) {
		n++
	}
	named := rest[:n]
	return named != "" && !strings.HasPrefix(named, commit) && !strings.HasPrefix(commit, named)
}
