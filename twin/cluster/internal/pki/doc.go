// Package pki makes the certificates and keys of one embedded workload cluster with crypto/x509: a
// cluster CA, a front-proxy CA, serving certificates, client certificates for the admin, the
// controllers and each simulated kubelet, and the service-account signing key. No openssl.
//
// It owns key material only: it writes no kubeconfig and starts nothing. It imports only the
// standard library.
package pki
