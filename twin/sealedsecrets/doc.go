// Package sealedsecrets runs the real sealed-secrets controller (bitnami sealed-secrets v0.40.0, built by
// the tool cache: tools/toolcache/pins.go SealedSecretsController) against one twin cluster, outside the
// cluster, as a process of the twin: it installs the SealedSecret CRD of the same module version, starts
// the controller with the cluster's kubeconfig, and waits until it serves its certificate. The controller
// generates its key pair on first start into a Secret of its namespace (kube-system, where kubeseal looks
// for it by default), and unseals every SealedSecret of the cluster into a Secret.
//
// It imports the tool cache, the twin's process groups and client-go; never the twin's engines or
// scenarios.
package sealedsecrets
