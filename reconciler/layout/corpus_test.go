package layout_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"sigs.k8s.io/yaml"
)

// corpusCase is testdata/corpus/<layout>/expect.yaml: a real-world layout shape, written from scratch,
// with faults planted in it, and what Flux does with it -- the oracle validate is held to.
type corpusCase struct {
	Description string `json:"description"`
	// Runs validate the layout's repo/ folder once each (offline), with the entry options and the
	// local sources given.
	Runs []corpusRun `json:"runs"`
	// Flux records what real Flux does with the layout (the oracle, for a run on a twin): the
	// Kustomizations that become Ready, and those that fail with the message Flux gives.
	Flux struct {
		Ready  []string          `json:"ready"`
		Failed map[string]string `json:"failed"`
		// Blocked are the Kustomizations held back, not Ready, by a failed dependency: nothing of their
		// own to fix, so no finding names them.
		Blocked map[string]string `json:"blocked"`
		// Oracle says how Flux's outcome is known: "twin" (the layout runs on a twin with the pinned
		// Flux), or "recorded" with why the twin cannot run it.
		Oracle string `json:"oracle"`
		// Sources maps the source URLs the layout names to the folders (relative to the layout) they
		// hold, for the oracle's run (twin/flux TestCorpusOracle serves each on loopback).
		Sources map[string]string `json:"sources"`
		// Spokes are the kubeconfig Secrets the oracle's run gives a cluster each.
		Spokes []string `json:"spokes"`
		// SOPS: the oracle's run encrypts the files of the Plain folder over the repository's stand-ins
		// with an age key it keeps in Secret flux-system/<Secret>.
		SOPS *struct {
			Secret string `json:"secret"`
			Plain  string `json:"plain"`
		} `json:"sops"`
	} `json:"flux"`
}

type corpusRun struct {
	Name    string            `json:"name"`
	Path    string            `json:"path"`
	Cluster string            `json:"cluster"`
	Sources map[string]string `json:"sources"`
	// Findings are every finding at warning or above, exactly. Flux names the Kustomization the
	// fault makes fail ("" for a policy finding: Flux applies it, the rule refuses it).
	Findings []corpusFinding `json:"findings"`
}

type corpusFinding struct {
	Rule     layout.RuleID   `json:"rule"`
	Severity layout.Severity `json:"severity"`
	File     string          `json:"file"`
	Line     int             `json:"line"`
	Contains []string        `json:"contains"`
	Flux     string          `json:"flux"`
}

func (f corpusFinding) key() string {
	return fmt.Sprintf("%s %s %s:%d", f.Severity, f.Rule, f.File, f.Line)
}

// TestCorpus is the differential test's static half: for every layout of testdata/corpus, validate
// reports exactly the planted faults (rule, file, line, and what the message must say) and nothing
// else at warning or above; every finding of severity error names a Kustomization that Flux fails
// or is a policy finding, and every Kustomization Flux fails is named by an error.
func TestCorpus(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "expect.yaml"))
	if err != nil || len(dirs) < 8 {
		t.Fatalf("corpus: want at least 8 layouts, found %d (%v)", len(dirs), err)
	}
	for _, exp := range dirs {
		dir := filepath.Dir(exp)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			var cc corpusCase
			if err := yaml.UnmarshalStrict(data, &cc); err != nil {
				t.Fatalf("%s: %v", exp, err)
			}
			failing := map[string]bool{}
			for _, run := range cc.Runs {
				t.Run(run.Name, func(t *testing.T) {
					repo := filepath.Join(dir, "repo")
					cs, err := layout.DiscoverWith(repo, layout.DiscoverOptions{Path: run.Path, Cluster: run.Cluster})
					if err != nil {
						t.Fatal(err)
					}
					opts := layout.Options{Offline: true}
					for _, name := range sortedNames(run.Sources) {
						ls, err := layout.ParseLocalSource(name + "=" + filepath.Join(dir, run.Sources[name]))
						if err != nil {
							t.Fatal(err)
						}
						opts.Sources = append(opts.Sources, ls)
					}
					rep, err := layout.Validate(context.Background(), cs, opts)
					if err != nil {
						t.Fatal(err)
					}
					got := map[string]layout.Finding{}
					for _, f := range rep.Findings {
						if !f.Severity.AtLeast(layout.Warning) {
							continue
						}
						k := corpusFinding{Rule: f.Rule, Severity: f.Severity, File: f.File, Line: f.Line}.key()
						if _, dup := got[k]; dup {
							t.Errorf("two findings at %s", k)
						}
						got[k] = f
					}
					for _, w := range run.Findings {
						f, ok := got[w.key()]
						if !ok {
							t.Errorf("missing finding %s %v", w.key(), w.Contains)
							continue
						}
						delete(got, w.key())
						for _, c := range w.Contains {
							if !strings.Contains(f.Message+" | "+f.Hint, c) {
								t.Errorf("%s: message lacks %q:\n  %s\n  fix: %s", w.key(), c, f.Message, f.Hint)
							}
						}
						if f.Line == 0 || f.Hint == "" {
							t.Errorf("%s: want a line and a fix hint", w.key())
						}
						if w.Flux != "" {
							failing[w.Flux] = true
						}
					}
					for k, f := range got {
						t.Errorf("unexpected finding %s: %s (fix: %s)", k, f.Message, f.Hint)
					}
				})
			}
			// Every Kustomization Flux fails is named by a finding of some run.
			for ks := range cc.Flux.Failed {
				if !failing[ks] {
					t.Errorf("Flux fails %s (%s), but no expected finding names it", ks, cc.Flux.Failed[ks])
				}
			}
			for ks := range failing {
				if _, ok := cc.Flux.Failed[ks]; !ok {
					t.Errorf("a finding says Flux fails %s, but flux.failed does not list it", ks)
				}
			}
			if cc.Flux.Oracle == "" || len(cc.Flux.Ready) == 0 {
				t.Errorf("flux: record the oracle and the Kustomizations that become Ready")
			}
		})
	}
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
