package estate

import (
	"context"
	"path/filepath"

	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/chartmirror"
	"github.com/hybridtwin/hybridtwin/twin/engine"
)

// startCharts starts the chart mirror (twin/chartmirror): the chart folders of spec.charts packaged and
// served at their upstream URLs, oci:// sources pushed to the twin's registry (so it runs after the
// registry), and the loopback proxy the engines resolve chart URLs through. It runs when spec.charts is
// empty too: a chart URL nobody mirrored then fails at once with a message naming spec.charts, instead of
// waiting on a network the twin does not have.
func (e *Estate) startCharts(ctx context.Context) error {
	var srcs []chartmirror.Source
	for _, c := range e.spec.Spec.Charts {
		folders := make([]string, len(c.Charts))
		for i, f := range c.Charts {
			folders[i] = e.spec.Path(f)
		}
		srcs = append(srcs, chartmirror.Source{URL: c.URL, Charts: folders})
	}
	m, err := chartmirror.Start(ctx, chartmirror.Options{Dir: filepath.Join(e.stateDir, api.ChartsDir), Sources: srcs,
		Registry: e.reg.Host(), Logger: e.log.With("component", "charts")})
	if err != nil {
		return err
	}
	e.onStop("chart mirror", m.Stop)
	e.charts = m
	for _, r := range m.Repos() {
		e.progress("charts: %s <- %d chart(s), served at %s", r.URL, len(r.Charts), r.Local)
	}
	e.progress("charts: proxy %s answers for %d mirrored source(s) and refuses every other chart URL", m.ProxyURL(), len(m.Repos()))
	return nil
}

// chartMirror is the chart mirror as an engine reaches it (engine.Cluster.Charts).
func (e *Estate) chartMirror() *engine.ChartMirror {
	if e.charts == nil {
		return nil
	}
	return &engine.ChartMirror{Env: e.charts.Env(), Transport: e.charts.Transport()}
}
