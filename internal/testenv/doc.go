// Package testenv is the one place tests start the real components they run against, each on a port the
// OS assigns and stopped when the test (or the test binary) ends:
//
//   - APIServer: a kube-apiserver with etcd for one test (controller-runtime's envtest control plane,
//     with the binaries from the project's tool cache); SharedAPIServer: the test binary's one.
//   - Gitea: the test binary's one real Gitea (twin/gitserver); GiteaRepo: a repository on it with a
//     work clone, seeded with files.
//   - Git: a light Git server for one test (git http-backend behind basic auth, in process), and
//     SeededRepo: a repository on it with a work clone, seeded with files; Repo commits and pushes more.
//   - Run: TestMain's runner, which stops the shared components after the tests and on Ctrl-C.
//
// Everything a test starts is stopped through t.Cleanup; a failure to start fails the test. Seeding
// Gitea the way the twin does (organization, personas, reader user, branches from folders) is
// gitserver.Client.Seed's job, not this package's.
//
// It is test support, imported only from _test.go files. It imports tools/toolcache and twin/gitserver
// and nothing else of the project; it must not import reconciler/, scenarios/, cmd/ or the twin's
// composition (twin/ root), so that the tests of every package may use it.
package testenv
