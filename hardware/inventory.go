package hardware

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ObjectMeta names a document.
type ObjectMeta struct {
	Name string `yaml:"name" json:"name"`
}

// Inventory is an HCICluster document: the physical estate and its storage and network configuration.
type Inventory struct {
	APIVersion string        `yaml:"apiVersion" json:"apiVersion"`
	Kind       string        `yaml:"kind" json:"kind"`
	Metadata   ObjectMeta    `yaml:"metadata" json:"metadata"`
	Spec       InventorySpec `yaml:"spec" json:"spec"`

	// File is where the document was read from ("" when built in Go).
	File  string    `yaml:"-" json:"-"`
	pos   positions // field path -> line, for validation errors
	valid bool      // validate succeeded
}

// InventorySpec is the body of an HCICluster.
type InventorySpec struct {
	// Profile names the limit profile: aks-hci-2022 or aks-arc-23h2.
	Profile  string       `yaml:"profile" json:"profile"`
	Hosts    []Host       `yaml:"hosts" json:"hosts"`
	Storage  StorageSpec  `yaml:"storage" json:"storage"`
	Network  NetworkSpec  `yaml:"network" json:"network"`
	Planning PlanningSpec `yaml:"planning" json:"planning"`
}

// Host is one physical server. All hosts of an inventory must be the same model with the same configuration.
type Host struct {
	Name           string       `yaml:"name" json:"name"`
	Model          string       `yaml:"model" json:"model"`
	Cores          int          `yaml:"cores" json:"cores"`                   // physical cores, all sockets
	HyperThreading bool         `yaml:"hyperThreading" json:"hyperThreading"` // two logical processors per core
	MemoryGiB      int          `yaml:"memoryGiB" json:"memoryGiB"`
	Drives         []DriveGroup `yaml:"drives" json:"drives"`
}

// LogicalProcessors is cores, doubled with hyper-threading.
func (h Host) LogicalProcessors() int {
	if h.HyperThreading {
		return 2 * h.Cores
	}
	return h.Cores
}

// DriveTier is a drive's media type.
type DriveTier string

const (
	TierNVMe DriveTier = "NVMe"
	TierSSD  DriveTier = "SSD"
	TierHDD  DriveTier = "HDD"
)

var driveTiers = []DriveTier{TierNVMe, TierSSD, TierHDD}

func (t *DriveTier) ParseScalar(s string) error {
	for _, k := range driveTiers {
		if strings.EqualFold(s, string(k)) {
			*t = k
			return nil
		}
	}
	return fmt.Errorf("unknown drive tier %q; use NVMe, SSD or HDD", s)
}

// speed orders tiers: the fastest present is the cache when several are present.
func (t DriveTier) speed() int { return 2 - slices.Index(driveTiers, t) }

// DriveGroup is Count identical drives of one tier in a server.
type DriveGroup struct {
	Tier   DriveTier `yaml:"tier" json:"tier"`
	SizeGB int       `yaml:"sizeGB" json:"sizeGB"` // decimal GB, as drives are sold
	Count  int       `yaml:"count" json:"count"`
}

// Resiliency is a Storage Spaces Direct volume's fault tolerance.
type Resiliency string

const (
	TwoWayMirror            Resiliency = "two-way-mirror"
	ThreeWayMirror          Resiliency = "three-way-mirror"
	DualParity              Resiliency = "dual-parity"
	MirrorAcceleratedParity Resiliency = "mirror-accelerated-parity"
)

var resiliencies = []Resiliency{TwoWayMirror, ThreeWayMirror, DualParity, MirrorAcceleratedParity}

func (r *Resiliency) ParseScalar(s string) error {
	if s == "" {
		*r = ""
		return nil
	}
	for _, k := range resiliencies {
		if s == string(k) {
			*r = k
			return nil
		}
	}
	return fmt.Errorf("unknown resiliency %q; use %s", s, joinQuoted(resiliencies))
}

func joinQuoted[T ~string](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = string(x)
	}
	return strings.Join(parts, ", ")
}

// StorageSpec lists the cluster volumes. With none, the model assumes one volume over the whole pool with
// the documented default for the node count (two-way mirror up to 2 servers, three-way mirror from 3).
type StorageSpec struct {
	Volumes []Volume `yaml:"volumes" json:"volumes"`
}

// Volume is one cluster shared volume.
type Volume struct {
	Name       string     `yaml:"name" json:"name"`
	Resiliency Resiliency `yaml:"resiliency" json:"resiliency"`
	// SizeGB is the usable size; 0 means "the rest of the pool" (at most one volume may say so).
	SizeGB int `yaml:"sizeGB" json:"sizeGB"`
	// MirrorPercent is the mirror share of a mirror-accelerated parity volume (default 20).
	MirrorPercent int `yaml:"mirrorPercent" json:"mirrorPercent"`
}

// NetworkMode is how node VMs get addresses.
type NetworkMode string

const (
	Static NetworkMode = "static"
	DHCP   NetworkMode = "dhcp"
)

func (m *NetworkMode) ParseScalar(s string) error {
	switch strings.ToLower(s) {
	case "", "static":
		*m = Static
	case "dhcp":
		*m = DHCP
	default:
		return fmt.Errorf("unknown mode %q; use static or dhcp", s)
	}
	return nil
}

// IPRange is an inclusive range of IPv4 addresses.
type IPRange struct {
	Start string `yaml:"start" json:"start"`
	End   string `yaml:"end" json:"end"`
}

// NetworkSpec is the AKS virtual network: the management subnet, the node IP pool (static) and the VIP pool.
type NetworkSpec struct {
	Mode             NetworkMode `yaml:"mode" json:"mode"`
	ManagementSubnet string      `yaml:"managementSubnet" json:"managementSubnet"`
	// IPPools are the static node IP pool ranges (k8sNodeIpPoolStart/End); none with DHCP.
	IPPools []IPRange `yaml:"ipPools" json:"ipPools"`
	// VIPPool is the virtual IP range for API servers and Services of type LoadBalancer (both modes).
	VIPPool IPRange `yaml:"vipPool" json:"vipPool"`
	// LiveMigrationGbps is the live migration bandwidth per host (default from the profile).
	LiveMigrationGbps float64 `yaml:"liveMigrationGbps" json:"liveMigrationGbps"`
}

// Duration is a time.Duration written as "10s", "500ms".
type Duration time.Duration

func (d *Duration) ParseScalar(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration; write e.g. 10s or 500ms", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as "10s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// PlanningSpec holds the knobs of the planner; zero values take the profile's defaults.
type PlanningSpec struct {
	// VCPUOvercommit is vCPUs per logical processor (default 1: no overcommit).
	VCPUOvercommit float64 `yaml:"vcpuOvercommit" json:"vcpuOvercommit"`
	// ReservePercent is the failover reserve; it may be raised above the profile's 15%, not lowered.
	ReservePercent float64 `yaml:"reservePercent" json:"reservePercent"`
	// HostReservedMemoryGiB is memory kept for the host OS on each server, besides S2D cache metadata.
	HostReservedMemoryGiB int `yaml:"hostReservedMemoryGiB" json:"hostReservedMemoryGiB"`
	// FailoverDelay overrides the profile's crash-to-restart delay.
	FailoverDelay Duration `yaml:"failoverDelay" json:"failoverDelay"`
	// MigrationBlackout overrides the live migration blackout.
	MigrationBlackout Duration `yaml:"migrationBlackout" json:"migrationBlackout"`
	// MaxParallelMigrations overrides how many live migrations a host runs at once.
	MaxParallelMigrations int `yaml:"maxParallelMigrations" json:"maxParallelMigrations"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validName checks a Kubernetes-style DNS-1123 label of at most max characters.
func validName(s string, max int) string {
	switch {
	case s == "":
		return "is empty; give a name"
	case len(s) > max:
		return fmt.Sprintf("%q is %d characters; use at most %d", s, len(s), max)
	case !dnsLabel.MatchString(s):
		return fmt.Sprintf("%q is not a DNS label; use lower-case letters, digits and '-', starting and ending with a letter or digit", s)
	}
	return ""
}

func (inv *Inventory) line(path string) int { return inv.pos[path] }

func (inv *Inventory) errAt(path, format string, args ...any) *SpecError {
	file := inv.File
	if file == "" {
		file = "<inventory>"
	}
	return &SpecError{File: file, Line: inv.line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks an inventory built in Go (parsed ones are validated by the parser).
func (inv *Inventory) Validate() error { return inv.validate() }

func (inv *Inventory) validate() error {
	inv.valid = false
	s := &inv.Spec
	if inv.APIVersion != APIVersion {
		return inv.errAt("apiVersion", "is %q; write apiVersion: %s", inv.APIVersion, APIVersion)
	}
	if inv.Kind != KindHCICluster {
		return inv.errAt("kind", "is %q; an inventory has kind: %s", inv.Kind, KindHCICluster)
	}
	if msg := validName(inv.Metadata.Name, 63); msg != "" {
		return inv.errAt("metadata.name", "%s", msg)
	}
	if _, ok := LookupProfile(s.Profile); !ok {
		return inv.errAt("spec.profile", "%q is not a known limit profile; use one of %s", s.Profile, strings.Join(ProfileNames(), ", "))
	}
	if len(s.Hosts) == 0 {
		return inv.errAt("spec.hosts", "no hosts; list the servers of the HCI cluster")
	}
	if len(s.Hosts) > 64 {
		return inv.errAt("spec.hosts", "%d hosts is far beyond any Azure Stack HCI cluster (at most 16 servers, %s); the model stops at 64", len(s.Hosts), SrcArcScale)
	}
	names := map[string]int{}
	for i, h := range s.Hosts {
		p := fmt.Sprintf("spec.hosts[%d]", i)
		if msg := validName(h.Name, 63); msg != "" {
			return inv.errAt(p+".name", "%s", msg)
		}
		if j, dup := names[h.Name]; dup {
			return inv.errAt(p+".name", "%q is also the name of spec.hosts[%d]; host names must be unique", h.Name, j)
		}
		names[h.Name] = i
		if h.Cores <= 0 {
			return inv.errAt(p+".cores", "must be a positive number of physical cores, got %d", h.Cores)
		}
		if h.Cores > 1024 {
			return inv.errAt(p+".cores", "%d cores is beyond any Azure Stack HCI server; give physical cores of all sockets", h.Cores)
		}
		if h.MemoryGiB <= 0 {
			return inv.errAt(p+".memoryGiB", "must be positive (GiB of RAM), got %d", h.MemoryGiB)
		}
		if h.MemoryGiB > 64*1024 {
			return inv.errAt(p+".memoryGiB", "%d GiB is beyond any Azure Stack HCI server; give GiB, not MiB", h.MemoryGiB)
		}
		if len(h.Drives) == 0 {
			return inv.errAt(p+".drives", "no drives; Storage Spaces Direct needs local drives in every server")
		}
		tiers := map[DriveTier]bool{}
		for j, d := range h.Drives {
			dp := fmt.Sprintf("%s.drives[%d]", p, j)
			if d.Tier == "" {
				return inv.errAt(dp+".tier", "missing; use NVMe, SSD or HDD")
			}
			if tiers[d.Tier] {
				return inv.errAt(dp+".tier", "%s is listed twice; give one group per tier (all drives of a tier must be the same size and model)", d.Tier)
			}
			tiers[d.Tier] = true
			if d.SizeGB <= 0 || d.SizeGB > 1_000_000 {
				return inv.errAt(dp+".sizeGB", "must be the drive size in GB (1-1000000), got %d", d.SizeGB)
			}
			if d.Count <= 0 || d.Count > 400 {
				return inv.errAt(dp+".count", "must be the number of drives (1-400), got %d", d.Count)
			}
		}
		if i > 0 {
			if err := sameModel(inv, s.Hosts[0], h, i); err != nil {
				return err
			}
		}
	}
	if err := inv.validateStorage(); err != nil {
		return err
	}
	if err := inv.validateNetwork(); err != nil {
		return err
	}
	pl := s.Planning
	p, _ := LookupProfile(s.Profile)
	if pl.VCPUOvercommit < 0 || pl.VCPUOvercommit > 16 || (pl.VCPUOvercommit > 0 && pl.VCPUOvercommit < 0.1) {
		return inv.errAt("spec.planning.vcpuOvercommit", "must be between 0.1 and 16 vCPUs per logical processor (or unset for 1), got %g", pl.VCPUOvercommit)
	}
	if pl.ReservePercent != 0 && (pl.ReservePercent < p.ReserveFraction*100 || pl.ReservePercent > 90) {
		return inv.errAt("spec.planning.reservePercent", "must be between %g (%s) and 90, got %g", p.ReserveFraction*100, SrcBaseline, pl.ReservePercent)
	}
	if pl.HostReservedMemoryGiB < 0 || pl.HostReservedMemoryGiB >= s.Hosts[0].MemoryGiB {
		return inv.errAt("spec.planning.hostReservedMemoryGiB", "must be between 0 and the host memory (%d GiB), got %d", s.Hosts[0].MemoryGiB, pl.HostReservedMemoryGiB)
	}
	if pl.MaxParallelMigrations < 0 || pl.MaxParallelMigrations > 64 {
		return inv.errAt("spec.planning.maxParallelMigrations", "must be 1-64 (or unset for %d), got %d", p.Timing.MaxParallelMigrations, pl.MaxParallelMigrations)
	}
	inv.valid = true
	return nil
}

// sameModel reports the first difference between host i and host 0: all servers must be the same model
// (seed 002, "Certified hardware": "all servers have the same manufacturer and model"; "For every server in
// the cluster, use the same types of drives that are the same size and model").
func sameModel(inv *Inventory, a, b Host, i int) error {
	p := fmt.Sprintf("spec.hosts[%d]", i)
	diff := func(field string, want, got any) error {
		e := inv.errAt(p+"."+field, "host %q has %s %v but host %q has %v: all servers must be the same model and configuration (%s)", b.Name, field, got, a.Name, want, SrcBaseline)
		e.Err = ErrMixedHosts
		return e
	}
	switch {
	case a.Model != b.Model:
		return diff("model", a.Model, b.Model)
	case a.Cores != b.Cores:
		return diff("cores", a.Cores, b.Cores)
	case a.HyperThreading != b.HyperThreading:
		return diff("hyperThreading", a.HyperThreading, b.HyperThreading)
	case a.MemoryGiB != b.MemoryGiB:
		return diff("memoryGiB", a.MemoryGiB, b.MemoryGiB)
	}
	if len(a.Drives) != len(b.Drives) {
		return diff("drives", describeDrives(a.Drives), describeDrives(b.Drives))
	}
	for _, da := range a.Drives {
		found := false
		for _, db := range b.Drives {
			if da == db {
				found = true
			}
		}
		if !found {
			return diff("drives", describeDrives(a.Drives), describeDrives(b.Drives))
		}
	}
	return nil
}

func describeDrives(ds []DriveGroup) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%dx %s %d GB", d.Count, d.Tier, d.SizeGB)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (inv *Inventory) validateStorage() error {
	rest := -1
	names := map[string]bool{}
	if n := len(inv.Spec.Storage.Volumes); n > 64 {
		return inv.errAt("spec.storage.volumes", "%d volumes; S2D recommends at most 32 per cluster (%s)", n, SrcS2DPlanVolumes)
	}
	for i, v := range inv.Spec.Storage.Volumes {
		p := fmt.Sprintf("spec.storage.volumes[%d]", i)
		if msg := validName(v.Name, 63); msg != "" {
			return inv.errAt(p+".name", "%s", msg)
		}
		if names[v.Name] {
			return inv.errAt(p+".name", "%q is used twice; volume names must be unique", v.Name)
		}
		names[v.Name] = true
		if v.Resiliency == "" {
			return inv.errAt(p+".resiliency", "missing; use %s", joinQuoted(resiliencies))
		}
		if v.SizeGB < 0 {
			return inv.errAt(p+".sizeGB", "must be the usable size in GB, or 0 for the rest of the pool; got %d", v.SizeGB)
		}
		if v.SizeGB == 0 {
			if rest >= 0 {
				return inv.errAt(p+".sizeGB", "unset, like spec.storage.volumes[%d]: only one volume can take the rest of the pool; give the others a sizeGB", rest)
			}
			rest = i
		}
		if v.MirrorPercent != 0 && v.Resiliency != MirrorAcceleratedParity {
			return inv.errAt(p+".mirrorPercent", "applies only to mirror-accelerated-parity volumes")
		}
		if v.MirrorPercent < 0 || v.MirrorPercent >= 100 {
			return inv.errAt(p+".mirrorPercent", "must be 1-99 (the mirror share of the volume), got %d", v.MirrorPercent)
		}
	}
	return nil
}

// parsedNet is the validated network: parsed prefixes and ranges.
type parsedNet struct {
	subnet netip.Prefix
	pools  []addrRange
	vip    addrRange
}

type addrRange struct{ start, end netip.Addr }

func (r addrRange) size() int {
	a, b := r.start.As4(), r.end.As4()
	return int(be32(b)-be32(a)) + 1
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (r addrRange) overlaps(o addrRange) bool {
	return !(r.end.Less(o.start) || o.end.Less(r.start))
}

func (r addrRange) String() string { return r.start.String() + "-" + r.end.String() }

func (inv *Inventory) parseRange(path string, r IPRange, subnet netip.Prefix) (addrRange, error) {
	start, err := netip.ParseAddr(r.Start)
	if err != nil || !start.Is4() {
		return addrRange{}, inv.errAt(path+".start", "%q is not an IPv4 address", r.Start)
	}
	end, err := netip.ParseAddr(r.End)
	if err != nil || !end.Is4() {
		return addrRange{}, inv.errAt(path+".end", "%q is not an IPv4 address", r.End)
	}
	if end.Less(start) {
		return addrRange{}, inv.errAt(path+".end", "%s comes before the start %s", end, start)
	}
	if !subnet.Contains(start) || !subnet.Contains(end) {
		return addrRange{}, inv.errAt(path, "%s-%s is not inside the management subnet %s; static node and VIP addresses must come from that subnet (%s)", start, end, subnet, SrcAKSNetwork)
	}
	if start == subnet.Addr() || end == broadcast(subnet) {
		return addrRange{}, inv.errAt(path, "%s-%s includes the subnet's network or broadcast address", start, end)
	}
	return addrRange{start, end}, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := be32(a) | (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (inv *Inventory) network() (parsedNet, error) {
	n := inv.Spec.Network
	var out parsedNet
	subnet, err := netip.ParsePrefix(n.ManagementSubnet)
	if err != nil || !subnet.Addr().Is4() {
		return out, inv.errAt("spec.network.managementSubnet", "%q is not an IPv4 CIDR; write e.g. 10.10.0.0/23", n.ManagementSubnet)
	}
	if subnet.Bits() > 29 || subnet.Bits() < 8 {
		return out, inv.errAt("spec.network.managementSubnet", "/%d is outside /8-/29 (the Arc resource bridge needs at least a /29, %s)", subnet.Bits(), SrcArcBridge)
	}
	out.subnet = subnet.Masked()
	mode := n.Mode
	if mode == "" {
		mode = Static
	}
	switch mode {
	case Static:
		if len(n.IPPools) == 0 {
			return out, inv.errAt("spec.network.ipPools", "static networking needs at least one node IP pool range (start, end); or set mode: dhcp")
		}
	case DHCP:
		if len(n.IPPools) > 0 {
			return out, inv.errAt("spec.network.ipPools", "with mode: dhcp node addresses come from DHCP; remove ipPools or set mode: static")
		}
	}
	if len(n.IPPools) > 64 {
		return out, inv.errAt("spec.network.ipPools", "%d ranges; merge them into at most 64", len(n.IPPools))
	}
	for i, r := range n.IPPools {
		ar, err := inv.parseRange(fmt.Sprintf("spec.network.ipPools[%d]", i), r, out.subnet)
		if err != nil {
			return out, err
		}
		for j, o := range out.pools {
			if ar.overlaps(o) {
				return out, inv.errAt(fmt.Sprintf("spec.network.ipPools[%d]", i), "%s overlaps spec.network.ipPools[%d] %s", ar, j, o)
			}
		}
		out.pools = append(out.pools, ar)
	}
	if n.VIPPool.Start == "" && n.VIPPool.End == "" {
		return out, inv.errAt("spec.network.vipPool", "missing; a VIP pool is mandatory in both static and DHCP networking (%s)", SrcAKSNetwork)
	}
	out.vip, err = inv.parseRange("spec.network.vipPool", n.VIPPool, out.subnet)
	if err != nil {
		return out, err
	}
	for j, o := range out.pools {
		if out.vip.overlaps(o) {
			return out, inv.errAt("spec.network.vipPool", "%s overlaps spec.network.ipPools[%d] %s; VIPs must be outside the node IP pool", out.vip, j, o)
		}
	}
	if n.LiveMigrationGbps < 0 || n.LiveMigrationGbps > 2000 {
		return out, inv.errAt("spec.network.liveMigrationGbps", "must be 0.1-2000 Gbit/s (or unset for the profile default), got %g", n.LiveMigrationGbps)
	}
	if n.LiveMigrationGbps > 0 && n.LiveMigrationGbps < 0.1 {
		return out, inv.errAt("spec.network.liveMigrationGbps", "must be 0.1-2000 Gbit/s (or unset for the profile default), got %g", n.LiveMigrationGbps)
	}
	return out, nil
}

func (inv *Inventory) validateNetwork() error {
	_, err := inv.network()
	return err
}
