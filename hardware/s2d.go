package hardware

import (
	"fmt"
	"math"
)

// Media is whether the capacity drives are all flash or include HDDs; dual parity encodes differently.
type Media string

const (
	AllFlash Media = "all-flash"
	Hybrid   Media = "hybrid"
)

// Efficiency is a resiliency's storage efficiency (usable / footprint) on a cluster of faultDomains servers.
// For mirror-accelerated parity, mirrorPercent is the mirror share (0 means the profile default, 20%).
// It returns an error wrapping ErrResiliency when the resiliency needs more fault domains.
//
// Figures: S2D "Fault tolerance and storage efficiency": two-way mirror 50% with at least 2 fault domains;
// three-way mirror 33.3% with at least 3; dual parity needs 4 and encodes by server count and media:
//
//	hybrid (HDD capacity):  4-6 RS 2+2 = 50%,  7-11 RS 4+2 = 66.7%, 12-16 LRC (8,2,1) = 72.7%
//	all-flash:              4-6 RS 2+2 = 50%,  7-8  RS 4+2 = 66.7%,  9-15 RS 6+2 = 75%, 16 LRC (12,2,1) = 80%
//
// Mirror-accelerated parity writes its mirror share three-way mirrored and the rest dual parity, so its
// efficiency lies between: 1 / (m/(1/3) + (1-m)/parity).
func Efficiency(r Resiliency, faultDomains int, media Media, mirrorPercent int) (float64, error) {
	need := 0
	switch r {
	case TwoWayMirror:
		need = 2
	case ThreeWayMirror:
		need = 3
	case DualParity, MirrorAcceleratedParity:
		need = 4
	default:
		return 0, fmt.Errorf("unknown resiliency %q: %w", r, ErrResiliency)
	}
	if faultDomains < need {
		return 0, fmt.Errorf("%s needs at least %d fault domains (servers), the cluster has %d (%s): %w", r, need, faultDomains, SrcS2DFaultTolerance, ErrResiliency)
	}
	switch r {
	case TwoWayMirror:
		return 1.0 / 2, nil
	case ThreeWayMirror:
		return 1.0 / 3, nil
	case DualParity:
		return dualParity(faultDomains, media), nil
	}
	if mirrorPercent == 0 {
		mirrorPercent = s2dRules.DefaultMirrorPercent
	}
	m := float64(mirrorPercent) / 100
	return 1 / (m*3 + (1-m)/dualParity(faultDomains, media)), nil
}

// dualParity is the dual parity efficiency for n >= 4 fault domains (Reed-Solomon data/(data+2), or LRC
// data/(data+2+1) with local parity).
func dualParity(n int, media Media) float64 {
	if media == AllFlash {
		switch {
		case n >= 16:
			return 12.0 / 15 // LRC (12,2,1)
		case n >= 9:
			return 6.0 / 8 // RS 6+2
		case n >= 7:
			return 4.0 / 6 // RS 4+2
		}
		return 2.0 / 4 // RS 2+2
	}
	switch {
	case n >= 12:
		return 8.0 / 11 // LRC (8,2,1)
	case n >= 7:
		return 4.0 / 6 // RS 4+2
	}
	return 2.0 / 4 // RS 2+2
}

// defaultResiliency is the resiliency S2D picks for a volume when none is given: "If you have more than two
// servers, we recommend using three-way mirroring instead" (S2D fault tolerance).
func defaultResiliency(servers int) Resiliency {
	if servers >= 3 {
		return ThreeWayMirror
	}
	return TwoWayMirror
}

// StorageResult is the storage pool and volumes, from raw drives to usable capacity. All sizes are decimal GB.
type StorageResult struct {
	Media          Media    `json:"media"`
	CacheTier      string   `json:"cacheTier,omitempty"`
	CapacityTiers  []string `json:"capacityTiers"`
	CacheGBPerHost int      `json:"cacheGBPerHost"`
	FaultDomains   int      `json:"faultDomains"`
	// RawGB is the capacity drives of all servers (cache drives add no capacity).
	RawGB float64 `json:"rawGB"`
	// ReserveGB is the pool reserve: one capacity drive per server, up to 4 (S2D plan volumes).
	ReserveGB     float64 `json:"reserveGB"`
	ReserveDrives int     `json:"reserveDrives"`
	// ResiliencyGB is what the volumes' extra copies and parity take.
	ResiliencyGB float64 `json:"resiliencyGB"`
	// UnallocatedGB is pool capacity left outside any volume.
	UnallocatedGB float64        `json:"unallocatedGB"`
	UsableGB      float64        `json:"usableGB"`
	Volumes       []VolumeResult `json:"volumes"`
	DemandGB      float64        `json:"demandGB"`
	HeadroomGB    float64        `json:"headroomGB"`
	Source        string         `json:"source"`
}

// VolumeResult is one volume's size and footprint.
type VolumeResult struct {
	Name        string     `json:"name"`
	Resiliency  Resiliency `json:"resiliency"`
	Efficiency  float64    `json:"efficiency"`
	SizeGB      float64    `json:"sizeGB"`
	FootprintGB float64    `json:"footprintGB"`
	Implicit    bool       `json:"implicit,omitempty"` // assumed because the inventory lists no volumes
}

// storage computes the pool and volumes of an inventory with hosts servers. A volume whose resiliency is
// impossible on this many servers is an ErrResiliency error; volumes that do not fit the pool are a
// finding, returned as a CapacityError.
func storage(inv *Inventory, hosts int) (StorageResult, error, error) {
	h := inv.Spec.Hosts[0]
	var res StorageResult
	res.Source = SrcS2DFaultTolerance + "; " + SrcS2DPlanVolumes + "; " + SrcS2DCache
	// S2D cache: with several drive types the fastest are the cache and add no capacity; with one type all are
	// capacity (S2D "Understanding the cache").
	fastest := h.Drives[0].Tier
	for _, d := range h.Drives {
		if d.Tier.speed() > fastest.speed() {
			fastest = d.Tier
		}
	}
	var capDrives []DriveGroup
	for _, d := range h.Drives {
		if len(h.Drives) > 1 && d.Tier == fastest {
			res.CacheTier = string(d.Tier)
			res.CacheGBPerHost += d.SizeGB * d.Count
			continue
		}
		capDrives = append(capDrives, d)
	}
	res.Media = AllFlash
	largest := 0
	capCount := 0
	for _, d := range capDrives {
		res.CapacityTiers = append(res.CapacityTiers, string(d.Tier))
		if d.Tier == TierHDD {
			res.Media = Hybrid
		}
		res.RawGB += float64(d.SizeGB * d.Count * hosts)
		largest = max(largest, d.SizeGB)
		capCount += d.Count
	}
	// Single server: Storage Spaces Direct places copies on different drives, so the fault domain is a drive.
	res.FaultDomains = hosts
	if hosts == 1 {
		res.FaultDomains = capCount
	}
	res.ReserveDrives = min(hosts, s2dRules.PoolReserveMaxDrives)
	res.ReserveGB = float64(res.ReserveDrives * largest)
	pool := res.RawGB - res.ReserveGB

	vols := inv.Spec.Storage.Volumes
	if len(vols) == 0 {
		vols = []Volume{{Name: "aks", Resiliency: defaultResiliency(hosts)}}
	}
	footprint := 0.0
	rest := -1
	for i, v := range vols {
		p := func() string { return fmt.Sprintf("spec.storage.volumes[%d].resiliency", i) }
		if hosts == 1 && (v.Resiliency == DualParity || v.Resiliency == MirrorAcceleratedParity) {
			e := inv.errAt(p(), "%s on a single server is not modeled: the efficiency tables are per server count; use a mirror", v.Resiliency)
			e.Err = ErrResiliency
			return res, e, nil
		}
		eff, err := Efficiency(v.Resiliency, res.FaultDomains, res.Media, v.MirrorPercent)
		if err != nil {
			e := inv.errAt(p(), "%v", err)
			e.Err = ErrResiliency
			if len(inv.Spec.Storage.Volumes) == 0 {
				e.Field = "spec.storage.volumes"
			}
			return res, e, nil
		}
		vr := VolumeResult{Name: v.Name, Resiliency: v.Resiliency, Efficiency: eff, SizeGB: float64(v.SizeGB), Implicit: len(inv.Spec.Storage.Volumes) == 0}
		if v.SizeGB == 0 {
			rest = i
		} else {
			vr.FootprintGB = vr.SizeGB / eff
			footprint += vr.FootprintGB
		}
		res.Volumes = append(res.Volumes, vr)
	}
	var capErr error
	if footprint > pool {
		capErr = &CapacityError{Check: "storage", Detail: fmt.Sprintf("the volumes' footprint is %.0f GB but the pool holds %.0f GB after the reserve of %d drive(s); shrink the volumes or use a more efficient resiliency", footprint, pool, res.ReserveDrives)}
	}
	if rest >= 0 {
		left := math.Max(0, pool-footprint)
		v := &res.Volumes[rest]
		v.FootprintGB = left
		v.SizeGB = math.Floor(left*v.Efficiency + 1e-6) // whole GB; the epsilon absorbs float error in exact thirds
		footprint += left
	}
	for _, v := range res.Volumes {
		res.UsableGB += v.SizeGB
		res.ResiliencyGB += v.FootprintGB - v.SizeGB
	}
	res.UnallocatedGB = math.Max(0, pool-footprint)
	return res, nil, capErr
}
