package fleetcost

import (
	"context"
	"fmt"
	"testing"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

func BenchmarkFleetCost(b *testing.B) {
	ctx := context.Background()
	variants, counts, err := selection()
	if err != nil {
		b.Fatal(err)
	}
	out, err := result.OutPath(resultFile)
	if err != nil {
		b.Fatal(err)
	}
	bins, err := embedded.ToolCacheBinaries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	crdDirs, err := fluxcrd.Dirs(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := embedded.New(embedded.Options{Binaries: bins})
	defer func() {
		if err := p.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	// Warm-up: binaries and libraries in the page cache, the Go runtime of this process grown.
	if _, err := startAll(ctx, p, []cluster.Spec{Variants[0].spec("fc-warmup")}); err != nil {
		b.Fatal(err)
	}
	if err := p.Delete(ctx, "fc-warmup"); err != nil {
		b.Fatal(err)
	}
	for _, v := range variants {
		for _, n := range counts {
			b.Run(fmt.Sprintf("%s/clusters=%d", v.Name, n), func(b *testing.B) {
				pt, err := measure(ctx, p, crdDirs, v, n)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(pt.perCluster("rss"), "MiB-rss/cluster")
				b.ReportMetric(pt.perCluster("pss"), "MiB-pss/cluster")
				b.ReportMetric(pt.perCluster("cpu"), "mcpu/cluster")
				if err := record(out, pt); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
