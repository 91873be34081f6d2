// Package scenarios holds the Ginkgo suites that drive a running twin the way a platform team's estate
// is exercised. One twin (examples/twin.yaml unless HYBRIDTWIN_SCENARIO_SPEC names another) is shared by
// every spec that does not need a different estate; specs that do (a layout of their own, an estate that
// fails N-1, real Flux) bring up their own twin and take it down. The specs run in the order suite_test.go
// lists them, and each puts the shared twin back as it found it. Labels:
//
//   - layout: the three repository layouts of the CI/CD guidance converge (dir-per-env on the shared twin,
//     branch-per-env and multi-repo on their own);
//   - drift: hand edits, deletions and hand-added fields on managed objects; a namespace-scoped
//     configuration reaching out of its namespace is Non-Compliant;
//   - failover: host crash with the reserve met, drain by live migration, two hosts lost, and a crash on
//     an estate that fails N-1 (stranded VMs, Pending pods, and why);
//   - scale: N clusters x M apps pushed in one commit (push-to-converged, CPU, memory), a node pool grown
//     until the hardware says no;
//   - flow: push-to-applied, rollback by git revert, promotion by pull request with an approval, an image
//     update by the CD pipeline's pull request;
//   - lifecycle: disaster recovery (delete and recreate a cluster) and onboarding under policy;
//   - flux: the same layouts and a push converged by real Flux (source-controller, kustomize-controller);
//   - fidelity: our reconciler and Flux side by side per behaviour, into the report's fidelity table;
//   - slow: excluded from `go tool task scenario` by default (flux, fidelity, the 3 x 50 scale run).
//
// Run it with `go tool task scenario` (extra Ginkgo flags after --, e.g. -- --label-filter=drift; the
// last --label-filter wins, so -- --label-filter=flux selects the real-Flux specs). `go tool task
// scenario:broken` runs the drift specs against reconcilers without drift correction and expects them to
// fail. The suite is skipped under plain `go test ./...` unless HYBRIDTWIN_SCENARIOS=1 is set, because it
// brings up whole twins. It writes scenario.json and scenario.html (package reports) next to Ginkgo's
// junit.xml.
//
// Every wait is an Eventually or Consistently bounded by a Waits value derived from the twin's time
// profile (profile.go). The package may import everything of the project (twin, hardware, reconciler,
// fakes, reports); nothing may import it.
package scenarios
