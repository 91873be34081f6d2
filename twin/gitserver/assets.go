package gitserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

// Gitea built from Go modules has no embedded assets (that needs the bindata tag and generated files the
// module does not ship). It reads them from STATIC_ROOT_PATH: options/ (translations and the label,
// gitignore, license and readme templates) and templates/. The API, smart HTTP and webhooks need only the
// en-US translation: `gitea web` refuses to start without it (every cron task's name is looked up in it,
// services/cron/tasks.go), even with cron disabled. Pages render unstyled and partly broken without the
// rest; the twin does not serve pages.
var assetFiles = []string{"options/locale/locale_en-US.json"}

// installAssets copies assetFiles into Dir/static once (a later Start on the same Dir reuses them), so the
// running server never reads the tool cache's share folder. The source is Options.Assets, else the tool
// cache's assets of the pinned Gitea (toolcache.Gitea's Assets, copied from the same module version the
// binary was built from).
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
		c, err := toolcache.New()
		if err != nil {
			return fmt.Errorf("gitserver: open the tool cache: %w: %w", ErrStart, err)
		}
		if src, err = c.Assets(ctx, toolcache.Gitea); err != nil {
			return fmt.Errorf("gitserver: Gitea's run-time assets from the tool cache: %w: %w; give Options.Assets a Gitea %s source tree", ErrStart, err, s.profile.GiteaVersion)
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
