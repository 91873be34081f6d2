// Package validate benchmarks the static stage of `hybridtwin validate` (reconciler/layout) on a
// generated repository of 2,000 objects and records the pace in validate.json ($HYBRIDTWIN_BENCH_OUT, or
// the run directory of $HYBRIDTWIN_BENCH_DIR), next to kubeconform's published pace (50,714 resources in
// 6.7 s). It imports reconciler/layout and bench/result only.
package validate
