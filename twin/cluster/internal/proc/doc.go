// Package proc hands out free loopback ports to the embedded clusters' components (Ports). The
// processes themselves run through twin/internal/procgroup, which twin/flux and twin/gitserver share,
// and tests read /proc through it too.
//
// It knows nothing of Kubernetes; it imports only the standard library.
package proc
