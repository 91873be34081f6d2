package twinup

import "github.com/hybridtwin/hybridtwin/reconciler"

// The twin's reconcilers run in this process, as in `hybridtwin up`: the same garbage-collector
// setting (GOGC/GOMEMLIMIT in the environment win).
var _ = reconciler.SetProcessGC(reconciler.DefaultProfile())
