package source

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fluxcd/pkg/ssh/knownhosts"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Git over SSH as source-controller v1.9 does it (fluxcd/pkg/git NewAuthOptions and gogit transportAuth):
// a key from the Secret's identity, the user from the URL or "git", and the host key verified strictly
// against the Secret's known_hosts with fluxcd/pkg/ssh/knownhosts, the same in-memory database
// source-controller uses; no fallback to the machine's ~/.ssh.

// DefaultSSHUser is the user when an ssh:// URL names none (fluxcd/pkg/git DefaultPublicKeyAuthUser).
const DefaultSSHUser = "git"

// ErrSSHAuthOptions is wrapped when an ssh:// source lacks the Secret keys it needs; the message is
// fluxcd/pkg/git AuthOptions.Validate's.
var ErrSSHAuthOptions = errors.New("invalid 'ssh' auth option")

// IsSSH reports whether a Git URL is ssh://.
func IsSSH(rawURL string) bool { return strings.HasPrefix(rawURL, "ssh://") }

// ValidateSSHAuth checks what source-controller checks before it fetches over SSH: a host, an identity
// and a known_hosts (fluxcd/pkg/git AuthOptions.Validate), then that an encrypted identity has its
// passphrase. a may be nil (no secretRef).
func ValidateSSHAuth(rawURL string, a *Auth) error {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%w: 'host' is required", ErrSSHAuthOptions)
	case a == nil || len(a.Identity) == 0:
		return fmt.Errorf("%w: 'identity' is required", ErrSSHAuthOptions)
	case len(a.KnownHosts) == 0:
		return fmt.Errorf("%w: 'known_hosts' is required", ErrSSHAuthOptions)
	}
	return nil
}

// IdentityNeedsPassword reports an encrypted identity given without a passphrase.
func IdentityNeedsPassword(a *Auth) bool {
	if a == nil || len(a.Identity) == 0 || a.Password != "" {
		return false
	}
	_, err := ssh.ParseRawPrivateKey(a.Identity)
	var missing *ssh.PassphraseMissingError
	return errors.As(err, &missing)
}

// sshAuth is the go-git auth method for an ssh:// fetch.
func sshAuth(rawURL string, a *Auth) (*sshKeyAuth, error) {
	if err := ValidateSSHAuth(rawURL, a); err != nil {
		return nil, err
	}
	u, _ := url.Parse(rawURL)
	user := u.User.Username()
	if user == "" {
		user = DefaultSSHUser
	}
	pk, err := gitssh.NewPublicKeys(user, a.Identity, a.Password)
	if err != nil {
		return nil, err
	}
	cb, algos, err := knownhosts.New(a.KnownHosts)
	if err != nil {
		return nil, err
	}
	pk.HostKeyCallback = cb
	return &sshKeyAuth{PublicKeys: pk, algos: algos}, nil
}

// sshKeyAuth offers the server only the host key algorithms known_hosts has keys of, so a server with
// several host keys shows the one known_hosts can verify (gogit CustomPublicKeys does the same).
type sshKeyAuth struct {
	*gitssh.PublicKeys
	algos []string
}

// ClientConfig implements go-git's ssh.AuthMethod.
func (a *sshKeyAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	algos := a.algos
	// An ssh-rsa key is verified with the SHA-2 signature schemes first (as gogit does).
	if len(algos) == 1 && algos[0] == ssh.KeyAlgoRSA {
		algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	cfg.HostKeyAlgorithms = algos
	return cfg, nil
}
