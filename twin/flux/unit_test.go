package flux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartRejectsBadOptions(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"no kubeconfig":      {Options{StateDir: t.TempDir()}, "Kubeconfig is empty"},
		"missing kubeconfig": {Options{Kubeconfig: filepath.Join(t.TempDir(), "nope"), StateDir: t.TempDir()}, "nope"},
		"no state dir":       {Options{Kubeconfig: kc}, "StateDir is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.opts)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidOptions containing %q", err, tc.want)
			}
		})
	}
}
