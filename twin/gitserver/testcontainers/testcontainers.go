package testcontainers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	tc "github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// DefaultImage is the official rootless Gitea image of the version the tool cache pins (gitserver's
// Profile.GiteaVersion, tools/toolcache/pins.go). Rootless: it runs as the git user, so `gitea admin`
// commands run by exec need no su.
const DefaultImage = "docker.gitea.com/gitea:1.26.4-rootless"

// HTTPPort is the port Gitea listens on inside the container (the image's default HTTP_PORT).
const HTTPPort = "3000/tcp"

// Options configure the container.
type Options struct {
	// Image is the Gitea image; DefaultImage when empty. Its tag must be the profile's GiteaVersion
	// (optionally with a -rootless suffix).
	Image string
	// Profile holds timings and the pinned version; nil means gitserver.DefaultProfile().
	Profile *gitserver.Profile
	// Name names the container; empty lets Docker choose (a fixed name breaks parallel runs).
	Name string
}

// ErrInvalidOptions is wrapped by every error about bad Options.
var ErrInvalidOptions = errors.New("invalid gitea container options")

func (o Options) resolve() (Options, gitserver.Profile, error) {
	p := gitserver.DefaultProfile()
	if o.Profile != nil {
		p = *o.Profile
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	at := strings.LastIndex(o.Image, ":")
	if at < 0 || at < strings.LastIndex(o.Image, "/") {
		return o, p, fmt.Errorf("gitserver/testcontainers: Options.Image %q has no tag: %w; pin a version such as %s", o.Image, ErrInvalidOptions, DefaultImage)
	}
	tag := strings.TrimSuffix(o.Image[at+1:], "-rootless")
	if tag != p.GiteaVersion {
		return o, p, fmt.Errorf("gitserver/testcontainers: Options.Image %q is Gitea %s, the profile pins %s: %w; use %s or change Profile.GiteaVersion", o.Image, tag, p.GiteaVersion, ErrInvalidOptions, DefaultImage)
	}
	if p.Version == "" || p.AdminUser == "" || p.ReadyTimeout <= 0 || p.ReadyPoll <= 0 {
		return o, p, fmt.Errorf("gitserver/testcontainers: Options.Profile lacks a version, admin user or ready timing: %w; start from gitserver.DefaultProfile()", ErrInvalidOptions)
	}
	return o, p, nil
}

// EnvKey is the environment variable the Gitea image turns into app.ini's section/key: GITEA__SECTION__KEY,
// with '.' and '-' written as _0X2E_ and _0X2D_ (Gitea modules/setting/config_env.go); the top section is
// the empty one, "GITEA____KEY".
func EnvKey(section, key string) string {
	enc := strings.NewReplacer(".", "_0X2E_", "-", "_0X2D_")
	return "GITEA__" + enc.Replace(section) + "__" + enc.Replace(key)
}

// containerSettings are the image-specific settings: the listen port and the URL clients see.
func containerSettings() []gitserver.Setting {
	return []gitserver.Setting{
		{Section: "server", Key: "HTTP_PORT", Value: "3000"},
		{Section: "server", Key: "DOMAIN", Value: "localhost"},
		{Section: "server", Key: "ROOT_URL", Value: "http://localhost:3000/"},
	}
}

// Env is the container's environment for profile p: gitserver.CommonSettings plus the container's own.
func Env(p gitserver.Profile) map[string]string {
	env := map[string]string{}
	for _, s := range append(gitserver.CommonSettings(p), containerSettings()...) {
		env[EnvKey(s.Section, s.Key)] = s.Value
	}
	return env
}

// Request builds the container request: image, environment, exposed port and a wait strategy that polls
// /api/v1/version until it answers 200 with the pinned version.
func Request(o Options) (tc.GenericContainerRequest, error) {
	o, p, err := o.resolve()
	if err != nil {
		return tc.GenericContainerRequest{}, err
	}
	want := []byte(`"version":"` + p.GiteaVersion + `"`)
	strategy := wait.ForHTTP("/api/v1/version").
		WithPort(HTTPPort).
		WithStatusCodeMatcher(func(status int) bool { return status == 200 }).
		WithResponseMatcher(func(body io.Reader) bool {
			b, err := io.ReadAll(body)
			return err == nil && bytes.Contains(b, want)
		}).
		WithStartupTimeout(p.ReadyTimeout).
		WithPollInterval(p.ReadyPoll)
	req := tc.GenericContainerRequest{
		ContainerRequest: tc.ContainerRequest{
			Image:        o.Image,
			Name:         o.Name,
			Env:          Env(p),
			ExposedPorts: []string{HTTPPort},
			WaitingFor:   strategy,
			Labels:       map[string]string{"io.hybridtwin.component": "gitserver", "io.hybridtwin.profile": p.Version},
		},
		Started: true,
	}
	if err := req.Validate(); err != nil {
		return tc.GenericContainerRequest{}, fmt.Errorf("gitserver/testcontainers: %w: %w", ErrInvalidOptions, err)
	}
	return req, nil
}

// Gitea is a running Gitea container.
type Gitea struct {
	container tc.Container
	url       string
	token     string
	admin     *gitserver.Client
}

// Start runs the container, waits until it is ready, and creates the admin user and token inside it. A
// failed Start terminates the container. It needs a Docker engine (see the package comment).
func Start(ctx context.Context, o Options) (*Gitea, error) {
	req, err := Request(o)
	if err != nil {
		return nil, err
	}
	_, p, _ := o.resolve()
	c, err := tc.GenericContainer(ctx, req)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("gitserver/testcontainers: start %s: %w", req.Image, err)
	}
	g := &Gitea{container: c}
	fail := func(err error) (*Gitea, error) {
		_ = c.Terminate(context.WithoutCancel(ctx))
		return nil, err
	}
	if g.url, err = c.PortEndpoint(ctx, HTTPPort, "http"); err != nil {
		return fail(fmt.Errorf("gitserver/testcontainers: find the mapped port of %s: %w", HTTPPort, err))
	}
	code, out, err := c.Exec(ctx, append([]string{"gitea"}, gitserver.AdminCreateArgs(p, "twin-container")...), tcexec.Multiplexed())
	if err != nil {
		return fail(fmt.Errorf("gitserver/testcontainers: run gitea admin user create: %w", err))
	}
	b, _ := io.ReadAll(out)
	if code != 0 {
		return fail(fmt.Errorf("gitserver/testcontainers: gitea admin user create exited %d (output withheld: it holds a password)", code))
	}
	if g.token, err = gitserver.ParseCreatedToken(string(b)); err != nil {
		return fail(err)
	}
	if g.admin, err = gitserver.NewClient(g.url, p.AdminUser, g.token, p); err != nil {
		return fail(err)
	}
	return g, nil
}

// URL is the server's base URL on the host, "http://127.0.0.1:<mapped port>".
func (g *Gitea) URL() string { return g.url }

// AdminToken is the admin's token. Never log it.
func (g *Gitea) AdminToken() string { return g.token }

// Admin is a client acting as the admin, like gitserver.Server's.
func (g *Gitea) Admin() *gitserver.Client { return g.admin }

// Stop terminates and removes the container.
func (g *Gitea) Stop(ctx context.Context) error {
	if err := g.container.Terminate(ctx); err != nil {
		return fmt.Errorf("gitserver/testcontainers: terminate: %w", err)
	}
	return nil
}
