package s3server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ErrInvalidOptions is wrapped by every error about bad Options, a bad Profile or a bad argument.
var ErrInvalidOptions = errors.New("invalid s3server options")

// ErrStart is wrapped by every failure to bring the server up from valid options.
var ErrStart = errors.New("s3 server failed to start")

// healthPath is the GET endpoint versitygw serves when started with --health (cmd/versitygw "health").
const healthPath = "/health"

// Options configure one S3 server.
type Options struct {
	// Dir is the server's state directory (required): buckets are folders under Dir/data, the server's
	// output goes to Dir/versitygw.log. It is created if missing.
	Dir string
	// Binary is the versitygw executable; empty means the tool cache's pinned versitygw
	// (toolcache.Versitygw), built on first use.
	Binary string
	// Logger receives the server's own log lines (never the secret); nil keeps it silent.
	Logger *slog.Logger
	// Profile holds limits and timings; nil means DefaultProfile().
	Profile *Profile
	// Restart is the back-off with which a crashed versitygw is restarted (procgroup.Supervise; zero:
	// procgroup.KubeletBackoff). The twin passes its time profile's.
	Restart procgroup.Backoff
	// OnRestart, if set, hears every restart of a crashed versitygw.
	OnRestart func(procgroup.Restart)
}

// Server is a running versitygw.
type Server struct {
	dir     string
	bin     string
	profile Profile
	log     *slog.Logger
	access  string
	secret  string
	port    int
	proc    *procgroup.Supervised // restarted on crash with the same port, credentials and data
	restart procgroup.Backoff
	onRest  func(procgroup.Restart)
	client  *minio.Client

	stopOnce sync.Once
}

// Start starts versitygw's posix backend on Dir/data, listening on a loopback port chosen by the OS, with
// a root access key and secret generated for this server. It returns once the health endpoint answers
// and the credentials are accepted. A failed Start leaves no process behind.
func Start(ctx context.Context, opts Options) (*Server, error) {
	p := DefaultProfile()
	if opts.Profile != nil {
		p = *opts.Profile
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("s3server: Options.Dir is empty: %w; set it to a folder under the twin's state directory", ErrInvalidOptions)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("s3server: Options.Dir %q: %w: %w", opts.Dir, ErrInvalidOptions, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("s3server: create %s: %w: %w; give a writable folder", dir, ErrInvalidOptions, err)
	}
	bin, err := findBinary(ctx, opts.Binary)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// AWS access key ids are 20 characters and secret keys 40 (AWS IAM User Guide, "Manage access keys");
	// rand.Text gives 26 base32 characters, so two make a secret.
	s := &Server{dir: dir, bin: bin, profile: p, log: log,
		access: "HT" + rand.Text()[:18], secret: rand.Text() + rand.Text()[:14],
		restart: opts.Restart, onRest: opts.OnRestart}
	began := time.Now()
	for attempt := 1; ; attempt++ {
		err := s.startOnce(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt >= p.PortAttempts {
			return nil, err
		}
		log.Debug("the chosen port was taken before versitygw bound it; choosing another", "port", s.port, "attempt", attempt)
	}
	log.Info("s3 server started", "endpoint", s.Endpoint(), "pid", s.PID(), "dir", dir, "profile", p.Version,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// errPortTaken marks a start that failed because another process bound the chosen port first.
var errPortTaken = errors.New("port taken")

func (s *Server) startOnce(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("s3server: find a free loopback port: %w: %w", ErrStart, err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	// The secret goes through the environment (cmd/versitygw reads ROOT_SECRET_ACCESS_KEY), not the
	// command line, so `ps` does not show it.
	env := []string{"ROOT_ACCESS_KEY_ID=" + s.access, "ROOT_SECRET_ACCESS_KEY=" + s.secret,
		"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
	proc, err := procgroup.Supervise(procgroup.Spec{
		Name: "versitygw", Path: s.bin, Env: env, Dir: s.dir, LogPath: filepath.Join(s.dir, "versitygw.log"),
		Args: []string{"--port", s.Endpoint(), "--region", s.profile.Region, "--health", healthPath, "--quiet",
			"posix", filepath.Join(s.dir, "data")},
	}, s.restart, func(r procgroup.Restart) {
		if r.Err != nil {
			s.log.Warn("versitygw restart failed", "restarts", r.Restarts, "err", r.Err)
		} else {
			s.log.Info("versitygw restarted after a crash", "restarts", r.Restarts, "pid", r.PID, "exited", r.Exited)
		}
		if s.onRest != nil {
			s.onRest(r)
		}
	})
	if err != nil {
		return fmt.Errorf("s3server: %w: %w", ErrStart, err)
	}
	s.proc = proc
	cl, err := minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(s.access, s.secret, ""),
		Region: s.profile.Region, Secure: false, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		s.proc.Kill()
		return fmt.Errorf("s3server: make a client for %s: %w: %w", s.Endpoint(), ErrStart, err)
	}
	s.client = cl
	if err := s.waitReady(ctx); err != nil {
		s.proc.Kill()
		return err
	}
	return nil
}

// waitReady polls the health endpoint, then checks the credentials with a bucket listing.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.profile.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(s.profile.ReadyPoll)
	defer tick.Stop()
	hc := &http.Client{Timeout: s.profile.ReadyPoll * 20}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+healthPath, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := s.client.ListBuckets(ctx); err != nil {
					return fmt.Errorf("s3server: versitygw on %s refuses its own root credentials: %w: %w", s.Endpoint(), ErrStart, err)
				}
				return nil
			}
			err = fmt.Errorf("GET %s: %s", healthPath, resp.Status)
		}
		last = err
		if strings.Contains(s.proc.LogTail(20), "address already in use") {
			return fmt.Errorf("s3server: versitygw could not bind port %d: %w: %w", s.port, ErrStart, errPortTaken)
		}
		select {
		case <-s.proc.Done():
			if strings.Contains(s.proc.LogTail(20), "address already in use") {
				return fmt.Errorf("s3server: versitygw could not bind port %d: %w: %w", s.port, ErrStart, errPortTaken)
			}
			return fmt.Errorf("s3server: %w: %w", ErrStart, s.proc.ExitError())
		case <-ctx.Done():
			return fmt.Errorf("s3server: versitygw did not answer on %s within %s (last: %v): %w; see %s", s.URL(), s.profile.ReadyTimeout, last, ErrStart, s.proc.LogPath())
		case <-tick.C:
		}
	}
}

func findBinary(ctx context.Context, bin string) (string, error) {
	p, bad, err := toolcache.Binary(ctx, toolcache.Versitygw, bin)
	switch {
	case bad:
		return "", fmt.Errorf("s3server: %w: %w", ErrInvalidOptions, err)
	case err != nil:
		return "", fmt.Errorf("s3server: %w: %w", ErrStart, err)
	}
	return p, nil
}

// Endpoint is the server's host:port, as a Flux Bucket's spec.endpoint takes it (no scheme).
func (s *Server) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's base URL (plain HTTP on loopback: a Bucket reads it with spec.insecure: true).
func (s *Server) URL() string { return "http://" + s.Endpoint() }

// AccessKey is the root access key generated for this server.
func (s *Server) AccessKey() string { return s.access }

// SecretKey is the root secret key generated for this server.
func (s *Server) SecretKey() string { return s.secret }

// Region is the region the server signs for.
func (s *Server) Region() string { return s.profile.Region }

// PID is the server process's id.
func (s *Server) PID() int { return s.proc.PID() }

// Restarts is how many times versitygw was restarted after a crash.
func (s *Server) Restarts() int { return s.proc.Restarts() }

// Dir is the server's state directory.
func (s *Server) Dir() string { return s.dir }

// Stop ends the server: SIGTERM, then SIGKILL to its process group after Profile.StopTimeout. The buckets
// stay on disk. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.proc.Stop(s.profile.StopTimeout)
		s.log.Info("s3 server stopped", "endpoint", s.Endpoint())
	})
}
