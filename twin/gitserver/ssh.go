package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
	"golang.org/x/crypto/ssh"
)

// Gitea's built-in SSH server (Gitea config cheat sheet, [server] START_SSH_SERVER), on loopback only, on a
// port the OS chose, with a host key the twin made so it can hand out a known_hosts line before any client
// connects (Flux verifies the host key strictly: source-controller takes known_hosts from the
// GitRepository's Secret and refuses an unknown or mismatching key).

// SSHUser is the user name every Git-over-SSH client signs in with ([server] BUILTIN_SSH_SERVER_USER; Gitea
// tells users apart by their key). "git" is the name Flux uses when the URL names none (fluxcd/pkg/git
// DefaultPublicKeyAuthUser) and the one Git hosts use.
const SSHUser = "git"

// sshHostKeyFile is the host key under the state directory. It is kept across restarts on the same
// directory, so known_hosts lines handed out earlier stay valid.
const sshHostKeyFile = "data/ssh/hybridtwin_ed25519"

// ensureHostKey reads the ed25519 host key at path, or makes one, and returns its public half.
func ensureHostKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("gitserver: make the SSH host key: %w: %w", ErrStart, gerr)
		}
		block, merr := ssh.MarshalPrivateKey(priv, "hybridtwin gitea host key")
		if merr != nil {
			return nil, fmt.Errorf("gitserver: encode the SSH host key: %w: %w", ErrStart, merr)
		}
		b = pem.EncodeToMemory(block)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("gitserver: create %s: %w: %w", filepath.Dir(path), ErrStart, err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("gitserver: write %s: %w: %w", path, ErrStart, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("gitserver: read %s: %w: %w", path, ErrStart, err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("gitserver: %s is not an SSH private key: %w: %w; remove it and start again", path, ErrInvalidOptions, err)
	}
	return signer.PublicKey(), nil
}

// sshSettings are the app.ini settings of the built-in SSH server.
func (c appConfig) sshSettings() []Setting {
	return []Setting{
		{"server", "DISABLE_SSH", "false"},
		{"server", "START_SSH_SERVER", "true"},
		{"server", "BUILTIN_SSH_SERVER_USER", SSHUser},
		{"server", "SSH_DOMAIN", c.Host},
		{"server", "SSH_LISTEN_HOST", c.Host},
		{"server", "SSH_PORT", strconv.Itoa(c.SSHPort)},
		{"server", "SSH_LISTEN_PORT", strconv.Itoa(c.SSHPort)},
		{"server", "SSH_SERVER_HOST_KEYS", c.path(sshHostKeyFile)},
		// The built-in server looks keys up in the database; no authorized_keys file for an OpenSSH daemon.
		{"server", "SSH_CREATE_AUTHORIZED_KEYS_FILE", "false"},
		{"server", "SSH_ROOT_PATH", c.path(homeDir + "/.ssh")},
	}
}

// SSHAddr is the built-in SSH server's address, "127.0.0.1:<port>".
func (s *Server) SSHAddr() string { return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.SSHPort)) }

// SSHHostKey is the SSH server's public host key.
func (s *Server) SSHHostKey() ssh.PublicKey { return s.hostKey }

// SSHKnownHosts is the known_hosts line for the SSH server ("[127.0.0.1]:<port> ssh-ed25519 AAAA..."), as
// `ssh-keyscan -p <port> 127.0.0.1` prints it and a Flux GitRepository Secret's known_hosts holds it.
func (s *Server) SSHKnownHosts() string { return KnownHostsLine(s.SSHAddr(), s.hostKey) }

// SSHCloneURL is the ssh:// clone URL of repo ("ssh://git@127.0.0.1:<port>/owner/name.git").
func (s *Server) SSHCloneURL(repo Repo) string {
	return "ssh://" + SSHUser + "@" + s.SSHAddr() + "/" + repo.Owner + "/" + repo.Name + ".git"
}

// KnownHostsLine is the known_hosts line for key at addr (host:port; the port in brackets unless 22).
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return strings.TrimSpace(knownHostsAddr(addr) + " " + string(ssh.MarshalAuthorizedKey(key)))
}

func knownHostsAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "22" {
		return strings.TrimSuffix(addr, ":22")
	}
	return "[" + host + "]:" + port
}

// NewSSHKey makes an ed25519 key pair for a Git client: the private key in OpenSSH PEM form (what a Flux
// Secret's identity holds) and the public key in authorized_keys form (what Gitea takes).
func NewSSHKey(comment string) (identity []byte, authorized string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("gitserver: make an SSH key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, "", fmt.Errorf("gitserver: encode an SSH key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("gitserver: encode an SSH public key: %w", err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment, nil
}

// AddUserKey registers an SSH public key (authorized_keys form) for user, named title (the client must act
// as the admin). With it the user reaches over SSH the repositories it may read or write over HTTPS.
func (c *Client) AddUserKey(ctx context.Context, user, title, authorized string) error {
	return c.call(ctx, "add SSH key "+title+" to user "+user, func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.AdminCreateUserPublicKey(user, gitea.CreateKeyOption{Title: title, Key: authorized, ReadOnly: true})
		return resp, err
	})
}

// waitSSH polls the SSH server until it answers with the host key the twin made. A server that shows
// another key is not ours: another process took the port before Gitea bound it.
func (s *Server) waitSSH(ctx context.Context) error {
	tick := time.NewTicker(s.profile.ReadyPoll)
	defer tick.Stop()
	var last error
	for {
		err := s.probeSSH(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			return err
		}
		last = err
		select {
		case <-s.web.Done():
			_, exitErr := s.web.Exited()
			return fmt.Errorf("gitserver: gitea web exited before its SSH server was ready (%v): %w; the end of %s:\n%s", exitErr, ErrStart, s.cfg.path(gitOutFile), s.outputTail())
		case <-ctx.Done():
			return fmt.Errorf("gitserver: gitea's SSH server at %s not ready within %s (last probe: %v): %w; the end of %s:\n%s", s.SSHAddr(), s.profile.ReadyTimeout, last, ErrStart, s.cfg.path(gitOutFile), s.outputTail())
		case <-tick.C:
		}
	}
}

// probeSSH makes one SSH handshake with no credentials: past a verified host key the server refuses the
// sign-in, which proves it is Gitea's.
func (s *Server) probeSSH(ctx context.Context) error {
	d := net.Dialer{Timeout: s.profile.ProbeTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.SSHAddr())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.profile.ProbeTimeout))
	var wrongKey bool
	cfg := &ssh.ClientConfig{User: SSHUser, Timeout: s.profile.ProbeTimeout,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if string(key.Marshal()) != string(s.hostKey.Marshal()) {
				wrongKey = true
				return errors.New("host key mismatch")
			}
			return nil
		}}
	c, _, _, err := ssh.NewClientConn(conn, s.SSHAddr(), cfg)
	switch {
	case err == nil:
		_ = c.Close()
		return nil
	case wrongKey:
		return fmt.Errorf("gitserver: the SSH server on %s shows another host key: %w: %w", s.SSHAddr(), ErrStart, errPortTaken)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return nil
	}
	return err
}
