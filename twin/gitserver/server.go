package gitserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ErrInvalidOptions is wrapped by every error about bad Options, a bad Profile or a bad argument.
var ErrInvalidOptions = errors.New("invalid gitserver options")

// ErrStart is wrapped by every failure to bring Gitea up from valid options.
var ErrStart = errors.New("gitea failed to start")

// Options configure one Gitea server.
type Options struct {
	// Dir is the server's state directory (required): app.ini, the sqlite database, the repositories and
	// Gitea's log live under it. It is created if missing; it must not be a file. Starting again on the same
	// Dir keeps the repositories and users (a new admin token is made).
	Dir string
	// Binary is the gitea executable; empty means the tool cache's pinned Gitea (toolcache.Gitea), built
	// on first use.
	Binary string
	// Logger receives the server's own log lines (never a token); nil keeps it silent. Gitea's output goes
	// to Dir/log/gitea.out.
	Logger *slog.Logger
	// Profile holds limits and timings; nil means DefaultProfile().
	Profile *Profile
	// Assets is a Gitea source tree of the pinned version (holding options/), from which Start copies
	// the files Gitea needs at run time into Dir (see assets.go). Empty means the tool cache's copy of
	// them (toolcache.Gitea's Assets).
	Assets string
	// Restart is the back-off with which a crashed `gitea web` is restarted (procgroup.Supervise; zero:
	// procgroup.KubeletBackoff). The twin passes its time profile's.
	Restart procgroup.Backoff
	// OnRestart, if set, hears every restart of a crashed `gitea web`.
	OnRestart func(procgroup.Restart)
}

// Server is a running Gitea.
type Server struct {
	cfg     appConfig
	bin     string
	env     []string
	profile Profile
	log     *slog.Logger
	red     *redactor
	http    *http.Client
	token   string
	hostKey ssh.PublicKey // the built-in SSH server's (ssh.go)

	web       *procgroup.Supervised // `gitea web`, in its own process group, restarted on crash
	restart   procgroup.Backoff
	onRestart func(procgroup.Restart)

	stopOnce sync.Once
	stopErr  error
}

// Start prepares Dir, bootstraps Gitea (migrate, admin user and token) and starts `gitea web` on a loopback
// port chosen by the OS. It returns once the API answers with the pinned version and accepts the admin
// token. A failed Start leaves no process behind.
func Start(ctx context.Context, opts Options) (*Server, error) {
	p := DefaultProfile()
	if opts.Profile != nil {
		p = *opts.Profile
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	dir, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := findBinary(ctx, opts.Binary)
	if err != nil {
		return nil, err
	}
	runUser, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("gitserver: find the current user for RUN_USER: %w: %w", ErrStart, err)
	}

	sec, err := loadSecrets(filepath.Join(dir, confFile))
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: appConfig{
			Dir: dir, Host: "127.0.0.1", RunUser: runUser.Username,
			AsRoot: os.Geteuid() == 0, Secrets: sec, Profile: p,
		},
		bin:     bin,
		profile: p,
		log:     log,
		red:     &redactor{},
		http:    &http.Client{},

		restart:   opts.Restart,
		onRestart: opts.OnRestart,
	}
	for _, v := range []string{sec.SecretKey, sec.InternalToken, sec.JWTSecret} {
		s.red.add(v)
	}
	s.env = s.environ()
	if s.hostKey, err = ensureHostKey(s.cfg.path(sshHostKeyFile)); err != nil {
		return nil, err
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}

	began := time.Now()
	if err := s.installAssets(ctx, opts.Assets); err != nil {
		return nil, err
	}
	if _, err := s.run(ctx, "migrate"); err != nil {
		return nil, err
	}
	token, err := s.bootstrapAdmin(ctx)
	if err != nil {
		return nil, err
	}
	s.token = token
	s.red.add(token)

	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if err := s.writeConfig(); err != nil { // a new port
				return nil, err
			}
		}
		if err := s.startWeb(); err != nil {
			return nil, err
		}
		err := s.waitReady(ctx)
		if err == nil {
			break
		}
		s.kill()
		if !errors.Is(err, errPortTaken) || attempt >= p.PortAttempts {
			return nil, err
		}
		log.Debug("a chosen port was taken before gitea bound it; choosing others", "port", s.cfg.Port, "ssh", s.cfg.SSHPort, "attempt", attempt)
	}
	log.Info("gitea started", "url", s.URL(), "ssh", s.SSHAddr(), "pid", s.PID(), "dir", dir, "profile", p.Version,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return s, nil
}

func prepareDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("gitserver: Options.Dir is empty: %w; set it to a folder under the twin's state directory", ErrInvalidOptions)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("gitserver: Options.Dir %q: %w: %w", dir, ErrInvalidOptions, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("gitserver: Options.Dir %s is a file, not a directory: %w; point it at a folder", abs, ErrInvalidOptions)
	}
	for _, d := range []string{filepath.Dir(confFile), dataDir, reposDir, logDir, staticDir, homeDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return "", fmt.Errorf("gitserver: create %s under Options.Dir: %w: %w; give a writable folder", d, ErrInvalidOptions, err)
		}
	}
	return abs, nil
}

func findBinary(ctx context.Context, bin string) (string, error) {
	p, bad, err := toolcache.Binary(ctx, toolcache.Gitea, bin)
	switch {
	case bad:
		return "", fmt.Errorf("gitserver: %w: %w", ErrInvalidOptions, err)
	case err != nil:
		return "", fmt.Errorf("gitserver: %w: %w", ErrStart, err)
	}
	return p, nil
}

// loadSecrets reuses the secrets of an app.ini written by an earlier Start on the same directory (Gitea
// encrypts some stored data with SECRET_KEY), else makes new ones.
func loadSecrets(path string) (secrets, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newSecrets(), nil
	}
	if err != nil {
		return secrets{}, fmt.Errorf("gitserver: read %s: %w: %w", path, ErrStart, err)
	}
	s := secrets{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "SECRET_KEY":
			s.SecretKey = strings.TrimSpace(v)
		case "INTERNAL_TOKEN":
			s.InternalToken = strings.TrimSpace(v)
		case "JWT_SECRET":
			s.JWTSecret = strings.TrimSpace(v)
		}
	}
	if s.SecretKey == "" || s.InternalToken == "" || s.JWTSecret == "" {
		return secrets{}, fmt.Errorf("gitserver: %s lacks SECRET_KEY, INTERNAL_TOKEN or JWT_SECRET: %w; it was not written by gitserver: remove it or use an empty Options.Dir", path, ErrInvalidOptions)
	}
	return s, nil
}

// environ is the environment of every Gitea process: the caller's, minus anything that would steer Gitea
// or git elsewhere, plus a private HOME.
func (s *Server) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GITEA_") || strings.HasPrefix(k, "GIT_") || strings.HasPrefix(k, "LISTEN_") ||
			k == "NOTIFY_SOCKET" || strings.HasPrefix(k, "WATCHDOG_") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+s.cfg.path(homeDir), "GITEA_WORK_DIR="+s.cfg.Dir, "GITEA_CUSTOM="+s.cfg.path("custom"))
	if s.cfg.AsRoot {
		// RECIPES.md: Gitea's commands refuse to run as root without it.
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	return env
}

// args are the arguments of one Gitea command: its configuration and work path, then args.
func (s *Server) args(args ...string) []string {
	return append([]string{"--config", s.cfg.path(confFile), "--work-path", s.cfg.Dir}, args...)
}

// command prepares one bootstrap command (its output, which may hold a token or a password, stays in
// memory, so it does not run through procgroup, which writes a log file). Ending ctx kills the command's
// process group.
func (s *Server) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin, s.args(args...)...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Dir = s.cfg.Dir
	cmd.Env = s.env
	// Own process group, so the git processes it runs end with it; killed if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs one bootstrap command and returns its output. Its output may hold a token, so it is redacted in
// errors and never logged.
func (s *Server) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.profile.CommandTimeout)
	defer cancel()
	cmd := s.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.Process != nil {
		killStragglers(cmd.Process.Pid) // anything it left in its group
	}
	if err != nil {
		return "", fmt.Errorf("gitserver: gitea %s in %s: %w: %v; its output:\n%s", args[0], s.cfg.Dir, ErrStart, err, indent(tail(redactPasswordLine(s.red.string(out.String())), 20)))
	}
	return out.String(), nil
}

// adminMarker records that the admin user exists in this state directory.
const adminMarker = "data/twin-admin"

var (
	createdToken = regexp.MustCompile(`Access token was successfully created\.\.\. ([0-9a-f]{40})`)
	rawToken     = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// AdminCreateArgs are the arguments of `gitea admin user create` that make the profile's admin with a
// random password (printed once, never kept) and an all-scope token named tokenName. Both backends run it.
func AdminCreateArgs(p Profile, tokenName string) []string {
	return []string{"admin", "user", "create", "--username", p.AdminUser, "--email", p.AdminUser + "@hybridtwin.example",
		"--admin", "--random-password", "--must-change-password=false",
		"--access-token", "--access-token-name", tokenName, "--access-token-scopes", "all"}
}

// ParseCreatedToken finds the token in the output of AdminCreateArgs. The error never holds the output
// (it holds a password).
func ParseCreatedToken(out string) (string, error) {
	m := createdToken.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("gitserver: no \"Access token was successfully created\" line in the %d bytes gitea admin user create printed: %w", len(out), ErrStart)
	}
	return m[1], nil
}

// ParseRawToken finds the token in the output of `gitea admin user generate-access-token --raw`: the last
// line (as root, Gitea prints a warning first; RECIPES.md).
func ParseRawToken(out string) (string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok := strings.TrimSpace(lines[len(lines)-1])
	if !rawToken.MatchString(tok) {
		return "", fmt.Errorf("gitserver: the last line gitea admin user generate-access-token printed is not a token: %w", ErrStart)
	}
	return tok, nil
}

// bootstrapAdmin creates the admin user with a token, or, on a state directory that has one already, a new
// token for it. The password is random and never kept: the twin signs in with the token only.
func (s *Server) bootstrapAdmin(ctx context.Context) (string, error) {
	name := s.profile.AdminUser
	tokenName := "twin-" + strings.ToLower(randomString(8))
	if b, err := os.ReadFile(s.cfg.path(adminMarker)); err == nil && strings.TrimSpace(string(b)) == name {
		out, err := s.run(ctx, "admin", "user", "generate-access-token", "--username", name,
			"--token-name", tokenName, "--scopes", "all", "--raw")
		if err != nil {
			return "", err
		}
		return ParseRawToken(out)
	}
	out, err := s.run(ctx, AdminCreateArgs(s.profile, tokenName)...)
	if err != nil {
		return "", err
	}
	tok, err := ParseCreatedToken(out)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(s.cfg.path(adminMarker), []byte(name+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("gitserver: write %s: %w: %w", s.cfg.path(adminMarker), ErrStart, err)
	}
	return tok, nil
}

var passwordLine = regexp.MustCompile(`generated random password is '[^']*'`)

func redactPasswordLine(s string) string {
	return passwordLine.ReplaceAllString(s, "generated random password is '"+redacted+"'")
}

// errPortTaken marks a start that failed because another process bound the chosen port first.
var errPortTaken = errors.New("port taken")

// writeConfig chooses free loopback ports (web and SSH) and writes app.ini for them. A port is free when
// chosen and Gitea binds it a moment later; should another process take it in between, Start tries others.
// (Handing Gitea an already-bound socket through LISTEN_FDS would close that gap, but Gitea then takes
// itself for a graceful-restart child and sends SIGTERM to its parent: modules/graceful/restart_unix.go.)
func (s *Server) writeConfig() error {
	ln, err := net.Listen("tcp", s.cfg.Host+":0")
	if err != nil {
		return fmt.Errorf("gitserver: find a free port on %s: %w: %w", s.cfg.Host, ErrStart, err)
	}
	sshLn, err := net.Listen("tcp", s.cfg.Host+":0")
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("gitserver: find a free port on %s: %w: %w", s.cfg.Host, ErrStart, err)
	}
	s.cfg.Port = ln.Addr().(*net.TCPAddr).Port
	s.cfg.SSHPort = sshLn.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	_ = sshLn.Close()
	path := s.cfg.path(confFile)
	if err := os.WriteFile(path, []byte(s.cfg.render()), 0o600); err != nil {
		return fmt.Errorf("gitserver: write %s: %w: %w", path, ErrStart, err)
	}
	return nil
}

// startWeb starts `gitea web` in its own process group (procgroup: Setpgid, Pdeathsig), its output in
// LogFile, restarted with back-off whenever it crashes (the same app.ini: the same port, database and
// repositories). The web process outlives Start's context: only Stop, a failed Start or our death ends it.
func (s *Server) startWeb() error {
	web, err := procgroup.Supervise(procgroup.Spec{
		Name: "gitea web", Path: s.bin, Args: s.args("web"), Env: s.env, Dir: s.cfg.Dir,
		LogPath: s.cfg.path(gitOutFile),
	}, s.restart, func(r procgroup.Restart) {
		if r.Err != nil {
			s.log.Warn("gitea restart failed", "restarts", r.Restarts, "err", r.Err)
		} else {
			s.log.Info("gitea restarted after a crash", "restarts", r.Restarts, "pid", r.PID, "exited", r.Exited)
		}
		if s.onRestart != nil {
			r.Name = "gitea"
			s.onRestart(r)
		}
	})
	if err != nil {
		return fmt.Errorf("gitserver: %w: %w", ErrStart, err)
	}
	s.web = web
	return nil
}

// waitReady polls /api/v1/version until it answers with the pinned version, then checks the admin token
// and waits for the built-in SSH server.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.profile.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(s.profile.ReadyPoll)
	defer tick.Stop()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, s.profile.ProbeTimeout)
		v, err := s.version(pctx)
		pcancel()
		if err == nil {
			if v != s.profile.GiteaVersion {
				return fmt.Errorf("gitserver: %s reports Gitea %s, profile %s pins %s: %w; rebuild the tool or fix Profile.GiteaVersion", s.bin, v, s.profile.Version, s.profile.GiteaVersion, ErrStart)
			}
			if err := s.checkToken(ctx); err != nil {
				return err
			}
			return s.waitSSH(ctx)
		}
		last = err
		// Gitea v1.26.4 logs a failed bind ("Failed to start server: ... address already in use") and may
		// keep running without serving, while whatever took the port answers the probes (404): read the
		// log on every failed probe, not only once the process has exited.
		if strings.Contains(s.outputTail(), "address already in use") {
			return fmt.Errorf("gitserver: gitea web could not bind port %d: %w: %w", s.cfg.Port, ErrStart, errPortTaken)
		}
		select {
		case <-s.web.Done():
			tail := s.outputTail()
			_, exitErr := s.web.Exited()
			return fmt.Errorf("gitserver: gitea web exited before it was ready (%v): %w; the end of %s:\n%s", exitErr, ErrStart, s.cfg.path(gitOutFile), tail)
		case <-ctx.Done():
			return fmt.Errorf("gitserver: gitea at %s not ready within %s (last probe: %v): %w; the end of %s:\n%s", s.URL(), s.profile.ReadyTimeout, last, ErrStart, s.cfg.path(gitOutFile), s.outputTail())
		case <-tick.C:
		}
	}
}

func (s *Server) version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := s.getJSON(ctx, "/api/v1/version", "", &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

func (s *Server) checkToken(ctx context.Context) error {
	var u struct {
		Login   string `json:"login"`
		IsAdmin bool   `json:"is_admin"`
	}
	if err := s.getJSON(ctx, "/api/v1/user", s.token, &u); err != nil {
		return s.red.err(fmt.Errorf("gitserver: the admin token is refused: %w: %w", ErrStart, err))
	}
	if u.Login != s.profile.AdminUser || !u.IsAdmin {
		return fmt.Errorf("gitserver: the admin token signs in as %q (admin %v), want admin %q: %w", u.Login, u.IsAdmin, s.profile.AdminUser, ErrStart)
	}
	return nil
}

func (s *Server) getJSON(ctx context.Context, path, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// URL is the server's base URL, "http://127.0.0.1:<port>".
func (s *Server) URL() string { return strings.TrimSuffix(s.cfg.rootURL(), "/") }

// AdminUser is the admin's user name.
func (s *Server) AdminUser() string { return s.profile.AdminUser }

// AdminToken is the admin's API token. Never log it: the server's errors and logs redact it.
func (s *Server) AdminToken() string { return s.token }

// Dir is the server's state directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// PID is the process id of `gitea web` (also its process group id); a restart changes it.
func (s *Server) PID() int { return s.web.PID() }

// Restarts is how many times `gitea web` was restarted after a crash.
func (s *Server) Restarts() int { return s.web.Restarts() }

// Profile is the profile the server runs with.
func (s *Server) Profile() Profile { return s.profile }

// LogFile is where Gitea's own output goes.
func (s *Server) LogFile() string { return s.cfg.path(gitOutFile) }

// Redact hides every token, password and webhook secret this server's clients know from s.
func (s *Server) Redact(text string) string { return s.red.string(text) }

// Stop asks Gitea to shut down (SIGTERM to its process group), waits up to Profile.StopTimeout or until
// ctx ends, then kills the group (procgroup's Stop and Kill), and kills whatever of the group outlived
// the web process (a git process Gitea ran). The state directory stays. Stop is safe to call more than
// once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		pid := s.PID()
		if exited, exitErr := s.web.Exited(); exited {
			s.stopErr = fmt.Errorf("gitserver: gitea (pid %d) had already exited: %v; the end of %s:\n%s", pid, exitErr, s.LogFile(), s.outputTail())
			// It crashed and waits for its restart: end the supervision, so that nothing restarts it (Kill
			// also ends a restart that happened meanwhile).
			s.web.Kill()
			killStragglers(pid)
			return
		}
		began := time.Now()
		stopped := make(chan struct{})
		go func() {
			s.web.Stop(s.profile.StopTimeout)
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.web.Kill()
			<-stopped
		}
		if waited := time.Since(began); waited >= s.profile.StopTimeout {
			s.log.Warn("gitea did not stop in time; killed it", "pid", pid, "timeout", s.profile.StopTimeout)
		}
		killStragglers(pid)
		s.log.Info("gitea stopped", "url", s.URL(), "pid", pid)
	})
	return s.stopErr
}

// kill ends the web process's group at once, stragglers included, and waits for the web process.
func (s *Server) kill() {
	s.web.Kill()
	killStragglers(s.PID())
}

// killStragglers SIGKILLs process group pgid if a live member remains after its leader was reaped. While
// a member lives, the kernel does not hand the group's id to a new process, so the signal cannot reach
// a stranger.
func killStragglers(pgid int) {
	if pgid > 0 && len(procgroup.GroupMembers(pgid)) > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// outputTail is the end of Gitea's output (procgroup.Tail: indented, valid UTF-8), redacted.
func (s *Server) outputTail() string {
	return s.red.string(procgroup.Tail(s.cfg.path(gitOutFile), 25))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
