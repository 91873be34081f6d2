package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// The filesystem storage driver registers itself with distribution's driver factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// ErrInvalidOptions is wrapped by every error about bad Options or a bad Profile.
var ErrInvalidOptions = errors.New("invalid registry options")

// ErrStart is wrapped by every failure to bring a registry up from valid options.
var ErrStart = errors.New("registry failed to start")

// Options configure one registry.
type Options struct {
	// Dir is the registry's state directory (required). Blobs and manifests live under Dir/storage.
	// It is created if missing; it must not be a file.
	Dir string
	// Addr is the loopback address to listen on; "127.0.0.1:0" (an OS-assigned port) when empty.
	Addr string
	// Logger receives the registry's logs; nil keeps it silent.
	Logger *slog.Logger
	// Profile holds limits and timeouts; the zero value means DefaultProfile().
	Profile *Profile
}

// Registry is a running in-process OCI registry.
type Registry struct {
	host    string
	dir     string
	profile Profile
	app     *handlers.App
	server  *http.Server
	served  chan error
	log     *slog.Logger
	sink    *sink

	stopOnce sync.Once
	stopErr  error
}

// Start validates opts, starts a registry on loopback and returns once it answers GET /v2/.
// A failed start leaves no listener and no goroutine behind.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	p := DefaultProfile()
	if opts.Profile != nil {
		p = *opts.Profile
	}
	if err := validate(opts, p); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	storage := filepath.Join(opts.Dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("registry: create storage directory %s (Options.Dir): %w: %w; give a writable folder", storage, ErrInvalidOptions, err)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen on %s (Options.Addr): %w: %w; use a free loopback address or 127.0.0.1:0", addr, ErrStart, err)
	}
	host := ln.Addr().String()

	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": storage},
			"delete":     configuration.Parameters{"enabled": p.DeleteEnabled},
			// The upload purger is a goroutine that wakes every 24 h to drop uploads older than 168 h
			// (distribution handlers/app.go, uploadPurgeDefaultConfig); a twin run is far shorter, and
			// disabling it leaves no goroutine behind after Stop.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
		Catalog: configuration.Catalog{MaxEntries: p.CatalogMaxEntries},
		Tags:    configuration.Tags{MaxTags: p.MaxTags},
	}
	// A fixed secret per instance; without one distribution makes its own and warns.
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.HTTP.Addr = host

	sink := bridge.add(host, log)
	app, err := newApp(ctx, cfg)
	if err != nil {
		bridge.remove(sink)
		_ = ln.Close()
		return nil, fmt.Errorf("registry: configure distribution with storage %s: %w: %w", storage, ErrStart, err)
	}
	r := &Registry{
		host:    host,
		dir:     opts.Dir,
		profile: p,
		app:     app,
		server:  &http.Server{Handler: app, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		served:  make(chan error, 1),
		log:     log,
		sink:    sink,
	}
	go func() { r.served <- r.server.Serve(ln) }()

	if err := r.probe(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ReadyTimeout)
		defer cancel()
		_ = r.Stop(stopCtx)
		return nil, err
	}
	log.Info("registry started", "url", r.URL(), "storage", storage, "profile", p.Version)
	return r, nil
}

// newApp turns distribution's panics on bad configuration into errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	return handlers.NewApp(context.WithoutCancel(ctx), cfg), nil
}

func validate(opts Options, p Profile) error {
	if opts.Dir == "" {
		return fmt.Errorf("registry: Options.Dir is empty: %w; set it to a folder under the twin's state directory", ErrInvalidOptions)
	}
	if fi, err := os.Stat(opts.Dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("registry: Options.Dir %s is a file, not a directory: %w; point it at a folder", opts.Dir, ErrInvalidOptions)
	}
	if opts.Addr != "" {
		h, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return fmt.Errorf("registry: Options.Addr %q: %w: %w; use host:port such as 127.0.0.1:0", opts.Addr, ErrInvalidOptions, err)
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("registry: Options.Addr %q is not a loopback IP address: %w; the twin's registry listens on loopback only, use 127.0.0.1:0", opts.Addr, ErrInvalidOptions)
		}
	}
	switch {
	case p.Version == "":
		return fmt.Errorf("registry: Profile.Version is empty: %w; start from DefaultProfile()", ErrInvalidOptions)
	case p.CatalogMaxEntries <= 0:
		return fmt.Errorf("registry: Profile.CatalogMaxEntries is %d: %w; it must be positive or /v2/_catalog fails (DefaultProfile uses 1000)", p.CatalogMaxEntries, ErrInvalidOptions)
	case p.MaxTags <= 0:
		return fmt.Errorf("registry: Profile.MaxTags is %d: %w; it must be positive (DefaultProfile uses 1000)", p.MaxTags, ErrInvalidOptions)
	case p.ReadyTimeout <= 0 || p.RequestTimeout <= 0:
		return fmt.Errorf("registry: Profile.ReadyTimeout (%s) and RequestTimeout (%s) must be positive: %w; start from DefaultProfile()", p.ReadyTimeout, p.RequestTimeout, ErrInvalidOptions)
	}
	return nil
}

// probe asks GET /v2/ once; the listener is bound before serving starts, so the first answer is the
// registry's own.
func (r *Registry) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.profile.ReadyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("registry: probe %s: %w: %w", r.URL(), ErrStart, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("registry: probe %s/v2/: %w: %w", r.URL(), ErrStart, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry: probe %s/v2/ answered %s: %w", r.URL(), resp.Status, ErrStart)
	}
	return nil
}

// Host is the registry's host:port, the prefix of image references ("127.0.0.1:40123/apps/podinfo:6.5.0").
func (r *Registry) Host() string { return r.host }

// URL is the registry's base URL, "http://127.0.0.1:<port>".
func (r *Registry) URL() string { return "http://" + r.host }

// Dir is the registry's state directory.
func (r *Registry) Dir() string { return r.dir }

// Profile is the profile the registry runs with.
func (r *Registry) Profile() Profile { return r.profile }

// Client returns a client for this registry.
func (r *Registry) Client() *Client {
	c := NewClient(r.host)
	c.timeout = r.profile.RequestTimeout
	return c
}

// Stop closes the listener, waits for in-flight requests until ctx ends, then stops distribution's
// background work. Stored images stay under Dir. Stop is safe to call more than once.
//
// One idle goroutine per started registry outlives Stop: distribution v3.1.2's handlers.NewApp starts a
// notifications broadcaster (github.com/docker/go-events) that App.Shutdown never closes and that is not
// reachable from outside the package. It holds no port, file or connection.
func (r *Registry) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		var errs []error
		if err := r.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain requests: %w", err))
			_ = r.server.Close()
		}
		if err := <-r.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
		if err := r.app.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("shut down distribution: %w", err))
		}
		bridge.remove(r.sink)
		if err := errors.Join(errs...); err != nil {
			r.stopErr = fmt.Errorf("registry %s: stop: %w", r.host, err)
			return
		}
		r.log.Info("registry stopped", "url", r.URL())
	})
	return r.stopErr
}
