// Package reports renders the project's results for people and machines: the capacity report of the
// hardware planner (capacity.go, svg.go, templates/: HTML with inline SVG charts and no scripts or network,
// Markdown and JSON) and the benchmark comparison (compare.go).
//
// It owns presentation only: every figure it shows comes from a result value. It may import the result types
// of the project's packages (hardware.Result and what it holds, bench/result) and the standard library; it
// must not import the twin, the reconciler, Kubernetes clients, nor do I/O beyond the writer it is given.
package reports
