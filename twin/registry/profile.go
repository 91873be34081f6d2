package registry

import "time"

// Profile holds every limit and default the registry runs with. Change Version whenever a value changes,
// so reports can say which profile a measurement was taken under.
type Profile struct {
	// Version names this set of values.
	Version string
	// CatalogMaxEntries caps one /v2/_catalog page. distribution's own default is 1000
	// (configuration/configuration.go, defaultMaxEntries), but that default is applied only when the
	// configuration is parsed from YAML: built in Go it stays 0 and _catalog fails (RECIPES.md, "OCI registry").
	CatalogMaxEntries int
	// MaxTags caps one tags/list page; distribution's default, likewise applied only when parsing YAML
	// (configuration/configuration.go, defaultMaxTags = 1000).
	MaxTags int
	// DeleteEnabled lets clients delete manifests and tags (distribution's storage.delete.enabled, off by
	// default in distribution; the twin needs it to model image clean-up).
	DeleteEnabled bool
	// ReadyTimeout bounds the first /v2/ probe after start. In-process start takes milliseconds
	// (RECIPES.md: an in-process registry serves in 4 ms); the bound only turns a wedged start into an error.
	ReadyTimeout time.Duration
	// RequestTimeout bounds one client request (push, list, get, delete) when the caller's context has no
	// deadline. A small generated image pushes in well under a second on loopback; this only stops a hang.
	RequestTimeout time.Duration
}

// DefaultProfile is the profile the twin uses unless a spec says otherwise.
func DefaultProfile() Profile {
	return Profile{
		Version:           "registry/v1",
		CatalogMaxEntries: 1000,
		MaxTags:           1000,
		DeleteEnabled:     true,
		ReadyTimeout:      10 * time.Second,
		RequestTimeout:    60 * time.Second,
	}
}
