package gitserver

import (
	"strings"
	"sync"
)

// redactor replaces every known secret (tokens, passwords, webhook secrets) with a marker. The server and
// its clients share one, so a secret made anywhere is hidden everywhere: in errors, in log lines and in the
// output of Gitea's commands.
type redactor struct {
	mu      sync.RWMutex
	secrets []string
}

const redacted = "[REDACTED]"

func (r *redactor) add(secret string) {
	if len(secret) < 6 { // too short to be a secret worth hiding; replacing it would garble text
		return
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, secret)
	r.mu.Unlock()
}

func (r *redactor) string(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// err returns err with every secret hidden from its message. errors.Is and errors.As still see the
// original chain.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := r.string(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
