package reconciler

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

var resultsPath = flag.String("results", result.OutPathFlag("reconciler.json"),
	"where benchmark results are merged (bench/result schema); empty disables writing")

// The package's API server is testenv.SharedAPIServer and its Gitea testenv.Gitea; gitSrv is its light
// Git server (TestMain).
var (
	gitSrv *testenv.GitServer

	resMu   sync.Mutex
	results []result.Metric
	notes   []string
)

func record(m result.Metric) {
	resMu.Lock()
	defer resMu.Unlock()
	results = append(results, m)
}

// note records a line for the results' notes; a benchmark function runs more than once (b.N probing),
// so a note given again replaces the earlier one with the same prefix (up to the first ':').
func note(s string) {
	resMu.Lock()
	defer resMu.Unlock()
	prefix, _, _ := strings.Cut(s, ":")
	for i, n := range notes {
		if p, _, _ := strings.Cut(n, ":"); p == prefix {
			notes[i] = s
			return
		}
	}
	notes = append(notes, s)
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	gitRoot, err := os.MkdirTemp("", "bench-git-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(gitRoot)
	// The repositories' working copies live here too, so nothing is left in the temp folder.
	workRoot = filepath.Join(gitRoot, "work")
	if err := os.MkdirAll(workRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	gitSrv, err = testenv.StartGitServer(filepath.Join(gitRoot, "repos"), "flux", "pw-"+randHex(8))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Git server:", err)
		return 1
	}
	defer gitSrv.Close()

	code := testenv.Run(m)
	if err := writeResults(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// writeResults merges this run's metrics into the results file (metrics of benchmarks not run this
// time are kept).
func writeResults() error {
	resMu.Lock()
	defer resMu.Unlock()
	if *resultsPath == "" || len(results) == 0 {
		return nil
	}
	run := &result.Run{}
	if old, err := result.Read(*resultsPath); err == nil {
		run = old
	}
	oldNotes := run.Env.Notes
	run.RunAt = nowUTC()
	run.Env = result.CurrentEnvironment()
	run.Env.PinsVersion = toolcache.PinsVersion
	run.Env.Tools = map[string]string{"kube-apiserver": toolcache.KubeAPIServer.Version, "etcd": toolcache.Etcd.Version,
		"gitea": toolcache.Gitea.Version}
	fixed := []string{
		"reconciler profile " + reconciler.DefaultProfile().Name,
		"API server: kube-apiserver + etcd (envtest control plane, tool cache binaries), no controllers; no client-side rate limit (APF on, as Flux detects it)",
		"CPU per object: this process (reconciler or raw loop client) and its children (kube-apiserver, etcd) from /proc, over the timed span",
		"Git: git http-backend over HTTP basic auth (scale, drift); Gitea with signed push webhooks (push-to-applied)",
		"machine shared with other builders; load average recorded in notes per benchmark",
		"Go GC: GOGC=" + gogc() + " in this process and its children (kube-apiserver and etcd inherit the environment)",
	}
	// Notes of benchmarks not run this time are kept, like their metrics; a note given again (same
	// prefix up to the first ':') replaces the old one.
	prefix := func(n string) string { p, _, _ := strings.Cut(n, ":"); return p }
	given := map[string]bool{}
	for _, n := range append(slices.Clone(fixed), notes...) {
		given[prefix(n)] = true
	}
	var kept []string
	for _, old := range oldNotes {
		if !given[prefix(old)] && !strings.HasPrefix(old, "reconciler profile ") {
			kept = append(kept, old)
		}
	}
	run.Env.Notes = append(append(fixed, kept...), notes...)
	for _, m := range results {
		run.Add(m)
	}
	return run.Write(*resultsPath)
}

func gogc() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return "100 (Go's default)"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
