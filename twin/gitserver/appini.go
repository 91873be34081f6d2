package gitserver

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// appConfig is everything app.ini depends on.
type appConfig struct {
	Dir      string // state directory (WORK_PATH)
	Host     string // 127.0.0.1
	Port     int
	SSHPort  int // the built-in SSH server's; 0 leaves SSH off (CommonSettings)
	RunUser  string
	AsRoot   bool
	Secrets  secrets
	Profile  Profile
	External string // ROOT_URL override (the container backend); "" means http://Host:Port/
}

// secrets are generated once per state directory and kept in app.ini (which only the owner can read).
type secrets struct {
	SecretKey     string // [security] SECRET_KEY
	InternalToken string // [security] INTERNAL_TOKEN, shared by Gitea's own processes
	JWTSecret     string // [oauth2] JWT_SECRET, 32 bytes base64url (Gitea's DecodeJwtSecretBase64)
}

func newSecrets() secrets {
	return secrets{
		SecretKey:     randomString(48),
		InternalToken: randomString(64),
		JWTSecret:     base64.RawURLEncoding.EncodeToString(randomBytes(32)),
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// randomString is n characters of [A-Za-z0-9_-].
func randomString(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))[:n]
}

// Paths inside the state directory.
const (
	confFile   = "custom/conf/app.ini"
	dataDir    = "data"
	reposDir   = "repos"
	logDir     = "log"
	staticDir  = "static"
	homeDir    = "home"
	dbFile     = "data/gitea.db"
	gitOutFile = "log/gitea.out"
)

func (c appConfig) path(rel string) string { return c.Dir + "/" + rel }

func (c appConfig) rootURL() string {
	if c.External != "" {
		return strings.TrimSuffix(c.External, "/") + "/"
	}
	return fmt.Sprintf("http://%s:%d/", c.Host, c.Port)
}

// Setting is one app.ini key. Section "" is the file's top (Gitea's DEFAULT section).
type Setting struct {
	Section string
	Key     string
	Value   string
}

// CommonSettings are the app.ini settings that do not depend on where Gitea runs (no paths, listen
// address, user or URL), for profile p with fresh random secrets. The local server and the container
// backend both use them. The values are RECIPES.md's ("Gitea from Go modules", "app.ini that worked")
// plus the profile's timings and the choices noted inline.
func CommonSettings(p Profile) []Setting {
	return commonSettings(p, newSecrets())
}

func commonSettings(p Profile, sec secrets) []Setting {
	return []Setting{
		{"", "APP_NAME", "hybridtwin"},
		{"", "RUN_MODE", "prod"},
		{"server", "PROTOCOL", "http"},
		{"server", "DISABLE_SSH", "true"},
		{"server", "START_SSH_SERVER", "false"},
		{"server", "OFFLINE_MODE", "true"},
		{"server", "LFS_START_SERVER", "false"},
		{"server", "GRACEFUL_HAMMER_TIME", duration(p.HammerTime)},
		{"database", "DB_TYPE", "sqlite3"},
		{"database", "SQLITE_JOURNAL_MODE", "WAL"},
		{"repository", "DEFAULT_BRANCH", "main"},
		{"repository", "DEFAULT_PRIVATE", "private"},
		{"security", "INSTALL_LOCK", "true"},
		{"security", "SECRET_KEY", sec.SecretKey},
		{"security", "INTERNAL_TOKEN", sec.InternalToken},
		{"oauth2", "JWT_SECRET", sec.JWTSecret},
		// Users are made by the twin through the admin API, never by sign-up. (Not REQUIRE_SIGNIN_VIEW: it
		// closes /api/v1/version, the readiness probe, to anonymous callers; the repositories are private.)
		{"service", "DISABLE_REGISTRATION", "true"},
		{"service", "DEFAULT_KEEP_EMAIL_PRIVATE", "true"},
		// Else Gitea refuses to deliver to 127.0.0.1 (RECIPES.md).
		{"webhook", "ALLOWED_HOST_LIST", "loopback,private"},
		// Gitea reads DELIVER_TIMEOUT in whole seconds.
		{"webhook", "DELIVER_TIMEOUT", strconv.Itoa(int(p.WebhookDeliverTimeout / time.Second))},
		// In-memory queues. Gitea's default queue type is "level" (on-disk LevelDB, modules/setting/queue.go
		// in Gitea v1.26.4), whose workers poll an empty queue with a backoff from 50 ms up to 2 s
		// (modules/queue/backoff.go backoffBegin/backoffUpper): after a quiet spell a push's webhook
		// waited up to 2 s per queue hop, so push-to-applied came out at 1.5 s or 3 s depending on how
		// long the queue had been idle. A "channel" queue hands items over at once. Items queued at a
		// stop are lost, which the twin's throwaway Gitea does not mind (Gitea config cheat sheet, [queue]
		// TYPE: level, channel, redis, dummy).
		{"queue", "TYPE", "channel"},
		{"session", "PROVIDER", "memory"},
		{"cache", "ADAPTER", "memory"},
		{"mailer", "ENABLED", "false"},
		{"indexer", "ISSUE_INDEXER_TYPE", "db"},
		{"indexer", "REPO_INDEXER_ENABLED", "false"},
		{"cron", "ENABLED", "false"},
		{"cron.update_checker", "ENABLED", "false"},
		{"actions", "ENABLED", "false"},
		{"packages", "ENABLED", "false"},
		{"log", "MODE", "console"},
		{"log", "LEVEL", p.LogLevel},
	}
}

// settings are the local server's: CommonSettings plus paths under Dir, the loopback address and port,
// and the user.
func (c appConfig) settings() []Setting {
	local := []Setting{
		{"", "RUN_USER", c.RunUser},
		{"", "WORK_PATH", c.Dir},
		{"server", "HTTP_ADDR", c.Host},
		{"server", "HTTP_PORT", strconv.Itoa(c.Port)},
		{"server", "DOMAIN", c.Host},
		{"server", "ROOT_URL", c.rootURL()},
		{"server", "APP_DATA_PATH", c.path(dataDir)},
		// The pages are unstyled without the npm-built frontend; the API, smart HTTP and webhooks do not need it.
		{"server", "STATIC_ROOT_PATH", c.path(staticDir)},
		{"database", "PATH", c.path(dbFile)},
		{"repository", "ROOT", c.path(reposDir)},
		{"log", "ROOT_PATH", c.path(logDir)},
	}
	if c.AsRoot {
		local = append(local, Setting{"", "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true"})
	}
	common := commonSettings(c.Profile, c.Secrets)
	if c.SSHPort == 0 {
		return append(local, common...)
	}
	// The built-in SSH server's settings take the place of CommonSettings' DISABLE_SSH/START_SSH_SERVER
	// (one key once: Gitea's ini reader keeps a repeated key's last value, which would hide the intent).
	ssh := c.sshSettings()
	for _, cs := range common {
		if cs.Section == "server" && (cs.Key == "DISABLE_SSH" || cs.Key == "START_SSH_SERVER") {
			continue
		}
		local = append(local, cs)
	}
	return append(local, ssh...)
}

// render writes app.ini: the settings grouped by section, in order of first appearance.
func (c appConfig) render() string {
	return "; Generated by hybridtwin twin/gitserver for profile " + c.Profile.Version + ". Start rewrites it.\n" + RenderINI(c.settings())
}

// RenderINI renders settings as an ini file, grouped by section in order of first appearance.
func RenderINI(settings []Setting) string {
	var order []string
	by := map[string][]Setting{}
	for _, s := range settings {
		if _, ok := by[s.Section]; !ok {
			order = append(order, s.Section)
		}
		by[s.Section] = append(by[s.Section], s)
	}
	var b strings.Builder
	for _, sec := range order {
		if sec != "" {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
		}
		for _, s := range by[sec] {
			fmt.Fprintf(&b, "%s = %s\n", s.Key, s.Value)
		}
	}
	return b.String()
}

// duration renders a Go duration the way Gitea's ini parser reads it ("5s", "1m30s").
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
