// Package scenarios holds the Ginkgo suites that drive a running twin the way a platform team's estate
// is exercised: drift on managed objects, HCI host failures and planned maintenance, GitOps flows
// (push, rollback by revert, promotion by pull request with a required approval) and repository layouts.
// One twin (examples/twin.yaml unless HYBRIDTWIN_SCENARIO_SPEC names another) is shared by every spec of
// the suite; specs are labelled drift, failover, flow, layout, scale and slow.
//
// Run it with `go tool task scenario` (extra Ginkgo flags after --, e.g. -- --label-filter=drift). The
// suite is skipped under plain `go test ./...` unless HYBRIDTWIN_SCENARIOS=1 is set, because it brings up
// a whole twin. It writes scenario.json and scenario.html (package reports) next to Ginkgo's junit.xml.
//
// Every wait is an Eventually or Consistently bounded by a Waits value derived from the twin's time
// profile (profile.go). The package may import everything of the project (twin, hardware, reconciler,
// fakes, reports); nothing may import it.
package scenarios
