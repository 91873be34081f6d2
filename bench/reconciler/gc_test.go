package reconciler

import "github.com/hybridtwin/hybridtwin/reconciler"

// gcSetting is the garbage-collector setting of this process, which hosts the reconciler under test:
// the one `hybridtwin up` gives the process its reconcilers run in (GOGC/GOMEMLIMIT in the
// environment win). It runs before TestMain.
var gcSetting = reconciler.SetProcessGC(reconciler.DefaultProfile())
