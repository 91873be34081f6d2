// Package proc hands out free loopback ports to the embedded clusters' components (Ports). The
// processes themselves run through twin/internal/procgroup, which twin/flux shares; GroupMembers and
// Alive here only forward to it for twin/cluster/integration until that test imports procgroup.
//
// It knows nothing of Kubernetes; it imports only the standard library and twin/internal/procgroup.
package proc
