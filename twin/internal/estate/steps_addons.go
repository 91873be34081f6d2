package estate

import (
	"context"
	"path/filepath"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/sealedsecrets"
)

// addonsDir is the state directory's folder of the add-ons' logs, one folder per cluster.
const addonsDir = "addons"

// startAddons starts the add-ons the spec asks for against the cluster, after its engine and before its
// configurations, so the CRDs they install exist when the first reconcile applies their objects:
// spec.sealedSecrets runs the sealed-secrets controller (twin/sealedsecrets). Each is a process of the
// twin in its own process group, stopped with the cluster.
func (e *Estate) startAddons(ctx context.Context, b *bringing) error {
	if !e.spec.Spec.SealedSecrets {
		return nil
	}
	name, rc := b.name, b.rc
	ctl, err := sealedsecrets.Start(ctx, sealedsecrets.Options{Kubeconfig: rc.info.Kubeconfig,
		StateDir: filepath.Join(e.stateDir, addonsDir, name),
		Logger:   e.log.With("component", "sealed-secrets", "cluster", name)})
	if err != nil {
		return err
	}
	e.addCleanup(cleanup{name: "sealed-secrets controller " + name, cluster: name, stage: api.StepAgentStopped,
		fn: func(context.Context) error { return ctl.Stop() }})
	rc.addons = append(rc.addons, engine.Component{Name: "sealed-secrets-controller", PID: ctl.PID(), Ports: ctl.Ports()})
	e.progress("add-ons %s: sealed-secrets controller (pid %d, certificate %s)", name, ctl.PID(), ctl.CertURL())
	if b.rep != nil {
		b.rep.Stage(api.StepAddons, time.Now(), "sealed-secrets-controller")
	}
	return nil
}
