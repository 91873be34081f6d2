package gitserver_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// One Gitea serves every integration test of the package (testenv.Gitea): it starts on first use, so the
// unit tests (layouts, webhook signatures, app.ini) do not wait for it, and testenv.Run stops it.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func server(t testing.TB) *gitserver.Server {
	t.Helper()
	srv := testenv.Gitea(t)
	sharedPID.Store(int64(srv.PID()))
	return srv
}

// sharedPID is the shared Gitea's process once a test has asked for it (childProcesses leaves it out).
var sharedPID atomic.Int64

var seq atomic.Int64

// unique is a name no other test uses, e.g. "t3-pushlayout".
func unique(t testing.TB, what string) string {
	base := strings.ToLower(t.Name())
	base = strings.NewReplacer("/", "-", "_", "-").Replace(base)
	if len(base) > 30 {
		base = base[:30]
	}
	return fmt.Sprintf("%s-%s-%d", base, what, seq.Add(1))
}

// copyDir copies a folder so a test can change it.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// edit replaces old with new in file (which must contain old).
func edit(t testing.TB, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
