package hardware

import (
	"errors"
	"math"
	"testing"
)

// TestEfficiency checks every figure of S2D "Fault tolerance and storage efficiency".
func TestEfficiency(t *testing.T) {
	cases := []struct {
		name    string
		r       Resiliency
		servers int
		media   Media
		mirror  int
		percent float64 // the document's figure, one decimal
	}{
		{"two-way mirror, 2 servers", TwoWayMirror, 2, Hybrid, 0, 50.0},
		{"two-way mirror, 8 servers", TwoWayMirror, 8, AllFlash, 0, 50.0},
		{"three-way mirror, 3 servers", ThreeWayMirror, 3, Hybrid, 0, 33.3},
		{"three-way mirror, 16 servers", ThreeWayMirror, 16, AllFlash, 0, 33.3},
		{"dual parity hybrid 4 (RS 2+2)", DualParity, 4, Hybrid, 0, 50.0},
		{"dual parity hybrid 6 (RS 2+2)", DualParity, 6, Hybrid, 0, 50.0},
		{"dual parity hybrid 7 (RS 4+2)", DualParity, 7, Hybrid, 0, 66.7},
		{"dual parity hybrid 11 (RS 4+2)", DualParity, 11, Hybrid, 0, 66.7},
		{"dual parity hybrid 12 (LRC 8,2,1)", DualParity, 12, Hybrid, 0, 72.7},
		{"dual parity hybrid 16 (LRC 8,2,1)", DualParity, 16, Hybrid, 0, 72.7},
		{"dual parity all-flash 4 (RS 2+2)", DualParity, 4, AllFlash, 0, 50.0},
		{"dual parity all-flash 6 (RS 2+2)", DualParity, 6, AllFlash, 0, 50.0},
		{"dual parity all-flash 7 (RS 4+2)", DualParity, 7, AllFlash, 0, 66.7},
		{"dual parity all-flash 8 (RS 4+2)", DualParity, 8, AllFlash, 0, 66.7},
		{"dual parity all-flash 9 (RS 6+2)", DualParity, 9, AllFlash, 0, 75.0},
		{"dual parity all-flash 15 (RS 6+2)", DualParity, 15, AllFlash, 0, 75.0},
		{"dual parity all-flash 16 (LRC 12,2,1)", DualParity, 16, AllFlash, 0, 80.0},
		// Mirror-accelerated parity, 4 servers, 20% mirror: a 10 TB volume takes 22 TB (3-way mirror 2 TB x 3 +
		// dual parity 8 TB / 50%), i.e. 45.5% (Dell "Computer vision on Azure Stack HCI", the S2D example).
		{"mirror-accelerated parity 4, 20% mirror", MirrorAcceleratedParity, 4, Hybrid, 20, 45.5},
		{"mirror-accelerated parity default share", MirrorAcceleratedParity, 4, Hybrid, 0, 45.5},
		// Between three-way mirror (33.3%) and dual parity (80%): 1/(0.1*3 + 0.9/0.8) = 70.2%.
		{"mirror-accelerated parity 16 all-flash, 10% mirror", MirrorAcceleratedParity, 16, AllFlash, 10, 70.2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Efficiency(c.r, c.servers, c.media, c.mirror)
			if err != nil {
				t.Fatal(err)
			}
			if math.Round(got*1000)/10 != c.percent {
				t.Errorf("efficiency %.4f, the document says %.1f%%", got, c.percent)
			}
		})
	}
}

func TestEfficiencyNeedsFaultDomains(t *testing.T) {
	cases := []struct {
		r       Resiliency
		servers int
	}{
		{TwoWayMirror, 1}, {ThreeWayMirror, 2}, {DualParity, 3}, {MirrorAcceleratedParity, 3}, {"raid-5", 8},
	}
	for _, c := range cases {
		if _, err := Efficiency(c.r, c.servers, Hybrid, 0); !errors.Is(err, ErrResiliency) {
			t.Errorf("%s on %d servers: err %v, want ErrResiliency", c.r, c.servers, err)
		}
	}
}

func TestStoragePool(t *testing.T) {
	nvme := DriveGroup{Tier: TierNVMe, SizeGB: 1600, Count: 2}
	ssd := DriveGroup{Tier: TierSSD, SizeGB: 3840, Count: 6}
	hdd := DriveGroup{Tier: TierHDD, SizeGB: 4000, Count: 8}
	cases := []struct {
		name          string
		hosts         int
		drives        []DriveGroup
		volumes       []Volume
		media         Media
		cache         string
		rawGB         float64
		reserveDrives int
		usableGB      float64
	}{
		// Two servers, one tier: all drives are capacity, no cache; reserve 2 drives; implicit two-way mirror.
		{"2 servers all SSD", 2, []DriveGroup{ssd}, nil, AllFlash, "", 2 * 6 * 3840, 2, (2*6*3840 - 2*3840) / 2},
		// NVMe cache + HDD capacity is hybrid; 3 servers: three-way mirror.
		{"3 servers NVMe+HDD", 3, []DriveGroup{nvme, hdd}, nil, Hybrid, "NVMe", 3 * 8 * 4000, 3, math.Floor(float64(3*8*4000-3*4000) / 3)},
		// The reserve stops at 4 drives however many servers.
		{"8 servers NVMe+HDD dual parity", 8, []DriveGroup{nvme, hdd}, []Volume{{Name: "v", Resiliency: DualParity}}, Hybrid, "NVMe", 8 * 8 * 4000, 4, math.Floor(float64(8*8*4000-4*4000) * 4 / 6)},
		// NVMe + SSD: NVMe is the cache, all-flash.
		{"4 servers NVMe+SSD", 4, []DriveGroup{nvme, ssd}, []Volume{{Name: "v", Resiliency: ThreeWayMirror, SizeGB: 10000}}, AllFlash, "NVMe", 4 * 6 * 3840, 4, 10000},
		// Three tiers: the NVMe caches both SSD and HDD, which are both capacity; HDD makes it hybrid.
		{"4 servers NVMe+SSD+HDD", 4, []DriveGroup{nvme, ssd, hdd}, []Volume{{Name: "v", Resiliency: TwoWayMirror, SizeGB: 1000}}, Hybrid, "NVMe", 4 * (6*3840 + 8*4000), 4, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := inv("aks-arc-23h2", c.hosts, 16, true, 256, c.drives...)
			i.Spec.Storage.Volumes = c.volumes
			st, err, capErr := storage(i, c.hosts)
			if err != nil || capErr != nil {
				t.Fatal(err, capErr)
			}
			if st.Media != c.media || st.CacheTier != c.cache || st.RawGB != c.rawGB || st.ReserveDrives != c.reserveDrives || st.UsableGB != c.usableGB {
				t.Errorf("got media %s cache %q raw %.0f reserve %d usable %.0f; want %s %q %.0f %d %.0f",
					st.Media, st.CacheTier, st.RawGB, st.ReserveDrives, st.UsableGB, c.media, c.cache, c.rawGB, c.reserveDrives, c.usableGB)
			}
			// The waterfall adds up: raw - resiliency - reserve - unallocated = usable (to the GB of rounding).
			if d := st.RawGB - st.ResiliencyGB - st.ReserveGB - st.UnallocatedGB - st.UsableGB; math.Abs(d) > 1 {
				t.Errorf("waterfall does not add up: off by %.2f GB", d)
			}
		})
	}
}

func TestStorageVolumesOverPool(t *testing.T) {
	i := inv("aks-hci-2022", 2, 16, true, 256, DriveGroup{Tier: TierSSD, SizeGB: 1000, Count: 4})
	// Pool: 8000 raw - 2000 reserve = 6000; a 3500 GB two-way mirror needs 7000.
	i.Spec.Storage.Volumes = []Volume{{Name: "big", Resiliency: TwoWayMirror, SizeGB: 3500}}
	r := mustEval(t, i, nil)
	f := findings(r, SeverityError, "storage")
	if len(f) != 1 || !errors.Is(r.Err(), ErrInsufficientCapacity) {
		t.Fatalf("want one storage error finding, got %+v", r.Findings)
	}
}

func TestWrongResiliencyForNodeCountIsAnError(t *testing.T) {
	i := inv("aks-hci-2022", 3, 16, true, 256)
	i.Spec.Storage.Volumes = []Volume{{Name: "p", Resiliency: DualParity}}
	_, err := Evaluate(i, nil)
	var se *SpecError
	if !errors.As(err, &se) || !errors.Is(err, ErrResiliency) || se.Field != "spec.storage.volumes[0].resiliency" {
		t.Fatalf("want a SpecError on spec.storage.volumes[0].resiliency wrapping ErrResiliency, got %v", err)
	}
}

func TestStorageDemand(t *testing.T) {
	i := inv("aks-hci-2022", 2, 16, true, 256, DriveGroup{Tier: TierSSD, SizeGB: 1000, Count: 4})
	// Usable: (8000 - 2000) / 2 = 3000 GB.
	p := plan(WorkloadCluster{Name: "a", StorageGB: 2999, NodePools: []NodePool{{Name: "w", Count: 1}}})
	if r := mustEval(t, i, p); len(findings(r, SeverityError, "storage")) != 0 || r.Headroom[2].Headroom != 1 {
		t.Fatalf("2999 of 3000 GB should fit with 1 GB headroom: %+v", r.Headroom[2])
	}
	p.Spec.WorkloadClusters[0].StorageGB = 3001
	if r := mustEval(t, i, p); len(findings(r, SeverityError, "storage")) != 1 {
		t.Fatalf("3001 of 3000 GB should not fit: %+v", r.Findings)
	}
}
