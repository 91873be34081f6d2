// Package result is the schema of a benchmark run: one JSON file per run holding the environment it ran in
// (cores, memory, Go, the pinned tool versions, the time profile) and every metric with its samples,
// median and p99, its unit and which direction is better. Bench drivers write it; `hybridtwin report
// compare` reads two (or a history) and says what regressed.
//
// It imports only the standard library, so reports can depend on it without pulling in the drivers.
package result
