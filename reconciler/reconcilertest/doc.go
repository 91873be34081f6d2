// Package reconcilertest starts the real components the reconciler's tests and benchmarks run against:
// a Kubernetes API server with etcd (controller-runtime's envtest control plane, with the binaries from
// the project's tool cache) and a Git server speaking real smart HTTP (git http-backend behind basic
// auth), with helpers to commit and push to its repositories.
//
// It is test support, imported only from _test.go files and bench/; it imports the tool cache
// (tools/toolcache) and nothing else of the project.
package reconcilertest
