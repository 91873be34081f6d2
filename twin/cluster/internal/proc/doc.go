// Package proc runs the control-plane processes of an embedded cluster: each in its own process group
// with a parent-death signal, its output in a log file, stopped by signalling its group (SIGTERM, then
// SIGKILL after a grace period). It also hands out free loopback ports.
//
// It owns process lifetimes only and knows nothing of Kubernetes; it imports only the standard library.
package proc
