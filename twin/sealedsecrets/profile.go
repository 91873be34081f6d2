package sealedsecrets

import "time"

// Profile holds the settings the controller runs with. Change Version whenever a value changes.
type Profile struct {
	// Version names this set of values.
	Version string
	// Namespace is the controller's namespace (POD_NAMESPACE), where it keeps its key pair. kube-system is
	// where upstream's controller.yaml installs it and where kubeseal looks by default
	// (--controller-namespace).
	Namespace string
	// Name is the controller's name, the Service name kubeseal's --controller-name defaults to
	// (sealed-secrets-controller, upstream's controller.yaml).
	Name string
	// ReadyTimeout bounds the wait for /readyz after the process starts: the first start generates a
	// 4096-bit RSA key (--key-size default), measured 2026-12-07 at ~1-3 s on 2 cores under load; the bound
	// leaves room for a loaded machine.
	ReadyTimeout time.Duration
	// ReadyPoll is the interval between readiness probes.
	ReadyPoll time.Duration
	// StopGrace is the time between SIGTERM (the controller shuts its servers down on it, main.go) and
	// SIGKILL.
	StopGrace time.Duration
}

// DefaultProfile is the profile Start uses when Options.Profile is nil.
func DefaultProfile() Profile {
	return Profile{
		Version:      "sealedsecrets/v1",
		Namespace:    "kube-system",
		Name:         "sealed-secrets-controller",
		ReadyTimeout: 2 * time.Minute,
		ReadyPoll:    100 * time.Millisecond,
		StopGrace:    10 * time.Second,
	}
}
