package api

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrRunning is wrapped when a twin of the same state directory is already running.
var ErrRunning = errors.New("twin already running")

// ErrNotRunning is wrapped when no twin answers on a state directory's control socket.
var ErrNotRunning = errors.New("no twin running")

// StateRoot is the folder holding one state directory per twin: $XDG_STATE_HOME/hybridtwin, else
// ~/.local/state/hybridtwin (the XDG Base Directory specification's default for $XDG_STATE_HOME).
func StateRoot() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hybridtwin"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w; set XDG_STATE_HOME or pass a state directory", err)
	}
	return filepath.Join(home, ".local", "state", "hybridtwin"), nil
}

// DefaultStateDir is the state directory of the twin named name.
func DefaultStateDir(name string) (string, error) {
	root, err := StateRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// ErrNoReconcilerMetrics is wrapped when a cluster's engine serves its own metrics (spec.reconciler:
// flux) rather than the twin's reconciler registry.
var ErrNoReconcilerMetrics = errors.New("the cluster runs no reconciler of the twin")
