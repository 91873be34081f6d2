// Package result is the schema of a benchmark run: one JSON file per run holding the environment it ran in
// (cores, memory, Go, the pinned tool versions, the time profile) and every metric with its samples,
// median and p99, its unit and which direction is better. Bench drivers write it; `hybridtwin report
// compare` reads two (or a history) and says what regressed.
//
// Besides the schema it owns the plumbing of one benchmark run made of several drivers:
//
//   - OutPath: where a driver writes (the run directory in $HYBRIDTWIN_BENCH_DIR, else bench/results/);
//   - ParseGoBench: plain `go test -bench` output (the planner, Gitea, registry benchmarks) as a run,
//     with the goals of GoBenchGoals;
//   - Merge: the drivers' files as one run (`hybridtwin report merge`), refusing parts from different
//     machines, and Environment.MachineKind, the key of the committed baselines
//     (bench/results/baseline/<machine kind>.json).
//
// It imports only the standard library, so reports can depend on it without pulling in the drivers.
package result
