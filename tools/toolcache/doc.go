// Package toolcache builds the external binaries the twin runs (the Kubernetes control plane, etcd, kwok,
// Gitea) from their pinned wrapper modules under tools/, once per machine, into a cache outside the repo:
// $HYBRIDTWIN_CACHE, else $XDG_CACHE_HOME/hybridtwin, else ~/.cache/hybridtwin.
//
// A binary lives at <cache>/bin/<name>-<version> and counts as built only while it reports the pinned
// version. Builds print progress, run under a per-tool file lock (two processes asking at once build once),
// happen in a temporary folder and move into place atomically, so a failed or interrupted build leaves
// nothing behind.
//
// The package imports nothing of the project; the pins (versions, build flags and their sources) live in
// pins.go.
package toolcache
