package gitserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Gitea built from Go modules has no embedded assets (that needs the bindata tag and generated files the
// module does not ship). It reads them from STATIC_ROOT_PATH: options/ (translations and the label,
// gitignore, license and readme templates) and templates/. The API, smart HTTP and webhooks need only the
// en-US translation: `gitea web` refuses to start without it (every cron task's name is looked up in it,
// services/cron/tasks.go), even with cron disabled. Pages render unstyled and partly broken without the
// rest; the twin does not serve pages.
var assetFiles = []string{"options/locale/locale_en-US.json"}

// installAssets copies assetFiles into Dir/static once (a later Start on the same Dir reuses them), so the
// running server never reads the module cache. The source is Options.Assets, else the Gitea module of the
// pinned version located with `go mod download` (already in the module cache once the tool cache has built
// Gitea).
func (s *Server) installAssets(ctx context.Context, src string) error {
	missing := false
	for _, f := range assetFiles {
		if _, err := os.Stat(filepath.Join(s.cfg.path(staticDir), f)); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	if src == "" {
		var err error
		if src, err = giteaModuleDir(ctx, s.profile.GiteaVersion, s.profile.CommandTimeout); err != nil {
			return err
		}
	}
	for _, f := range assetFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return fmt.Errorf("gitserver: read Gitea asset %s from %s: %w: %w; give Options.Assets a Gitea %s source tree", f, src, ErrStart, err, s.profile.GiteaVersion)
		}
		dst := filepath.Join(s.cfg.path(staticDir), f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return fmt.Errorf("gitserver: install Gitea asset %s: %w: %w", dst, ErrStart, err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return fmt.Errorf("gitserver: install Gitea asset %s: %w: %w", dst, ErrStart, err)
		}
	}
	return nil
}

// giteaModuleDir is the folder of code.gitea.io/gitea@v<version> in the module cache, downloading it
// through the module proxy if needed.
func giteaModuleDir(ctx context.Context, version string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mod := "code.gitea.io/gitea@v" + version
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir() // outside any module
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if errors.Is(err, exec.ErrNotFound) {
			msg = "the go command is not on PATH"
		}
		return "", fmt.Errorf("gitserver: locate Gitea's assets with go mod download %s: %w: %v: %s; give Options.Assets a Gitea %s source tree", mod, ErrStart, err, msg, version)
	}
	var info struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("gitserver: go mod download %s gave no folder (%s): %w", mod, info.Error, ErrStart)
	}
	return info.Dir, nil
}
