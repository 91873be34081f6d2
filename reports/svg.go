package reports

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
)

// Chart colours, shared by the charts and the legends.
const (
	colUsed     = "#2f6fb3"
	colReserve  = "#e3a21a"
	colFree     = "#cfe6cf"
	colDown     = "#b9b9b9"
	colLoss     = "#d9534f"
	colUsable   = "#2e8b57"
	colRaw      = "#5b6b7b"
	colDemand   = "#7b4fa0"
	colOverflow = "#d9534f"
	colText     = "#1f2933"
	colMuted    = "#52606d"
)

func f1(x float64) string {
	if x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func esc(s string) string { return html.EscapeString(s) }

type svgBuf struct{ strings.Builder }

func (b *svgBuf) rect(x, y, w, h float64, fill, title string) {
	if w <= 0 || h <= 0 {
		return
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`, x, y, w, h, fill, esc(title))
}

func (b *svgBuf) text(x, y float64, anchor, fill string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s" font-size="%d">%s</text>`, x, y, anchor, fill, size, esc(s))
}

func (b *svgBuf) open(id string, w, h float64, label string) {
	fmt.Fprintf(b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" font-family="Segoe UI, Helvetica, Arial, sans-serif"><title>%s</title>`, id, w, h, w, h, esc(label), esc(label))
}

func (b *svgBuf) close() template.HTML {
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from escaped values only
}

// stacked draws one used/reserve/free bar of width w for a resource.
func (b *svgBuf) stacked(x, y, w, h, capacity, used, reserve float64, unit, what string) {
	if capacity <= 0 {
		return
	}
	scale := w / capacity
	u := math.Min(used, capacity)
	r := math.Max(0, math.Min(reserve, capacity-u))
	free := math.Max(0, capacity-u-r)
	b.rect(x, y, u*scale, h, colUsed, fmt.Sprintf("%s used: %s of %s %s", what, f1(used), f1(capacity), unit))
	b.rect(x+u*scale, y, r*scale, h, colReserve, fmt.Sprintf("%s reserve: %s %s", what, f1(r), unit))
	b.rect(x+(u+r)*scale, y, free*scale, h, colFree, fmt.Sprintf("%s free: %s %s", what, f1(free), unit))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#8a96a3" stroke-width="0.6"/>`, x, y, w, h)
}

// HostChart is the per-host stacked bars of vCPU and memory (used, reserve, free). Down hosts are grey.
func HostChart(id, title string, hosts []hardware.HostUsage) template.HTML {
	const (
		left, barW, barH, gap, rowH, top = 130.0, 300.0, 16.0, 4.0, 52.0, 44.0
		colW                             = barW + 150
	)
	width := left + 2*colW
	height := top + rowH*float64(len(hosts)) + 10
	var b svgBuf
	b.open(id, width, height, title)
	b.text(4, 16, "start", colText, 14, title)
	b.text(left, top-6, "start", colMuted, 12, "cores (vCPU)")
	b.text(left+colW, top-6, "start", colMuted, 12, "memory (GiB)")
	for i, h := range hosts {
		y := top + rowH*float64(i)
		b.text(4, y+barH+gap, "start", colText, 12, h.Name)
		if h.Down {
			for c := 0; c < 2; c++ {
				x := left + colW*float64(c)
				b.rect(x, y+gap, barW, barH, colDown, h.Name+" is down")
				b.text(x+barW/2, y+gap+barH-4, "middle", colText, 11, "host down")
			}
			continue
		}
		b.stacked(left, y+gap, barW, barH, h.VCPUCapacity, float64(h.VCPUUsed), h.VCPUReserve, "vCPU", h.Name+" vCPU")
		b.text(left+barW+6, y+gap+barH-4, "start", colText, 11, fmt.Sprintf("%d / %s vCPU", h.VCPUUsed, f1(h.VCPUCapacity)))
		b.stacked(left+colW, y+gap, barW, barH, h.MemoryCapacityGiB, float64(h.MemoryUsedGiB), h.MemoryReserveGiB, "GiB", h.Name+" memory")
		b.text(left+colW+barW+6, y+gap+barH-4, "start", colText, 11, fmt.Sprintf("%d / %s GiB", h.MemoryUsedGiB, f1(h.MemoryCapacityGiB)))
		b.text(left, y+gap+barH+13, "start", colMuted, 10, fmt.Sprintf("%d VMs", len(h.VMs)))
	}
	return b.close()
}

// StorageWaterfall is raw capacity, minus resiliency, minus the pool reserve, minus unallocated space, to
// usable capacity, with the plan's demand beside it.
func StorageWaterfall(id string, st hardware.StorageResult) template.HTML {
	type step struct {
		label      string
		from, to   float64 // bar spans [to, from] in GB
		fill, note string
	}
	steps := []step{{"raw", st.RawGB, 0, colRaw, "capacity drives of all servers"}}
	level := st.RawGB
	down := func(label string, gb float64, fill, note string) {
		steps = append(steps, step{label, level, level - gb, fill, note})
		level -= gb
	}
	down("resiliency", st.ResiliencyGB, colLoss, "copies and parity of the volumes")
	down("reserve", st.ReserveGB, colReserve, fmt.Sprintf("%d capacity drive(s) kept for repairs", st.ReserveDrives))
	if st.UnallocatedGB > 0 {
		down("unallocated", st.UnallocatedGB, colDown, "pool space in no volume")
	}
	steps = append(steps, step{"usable", st.UsableGB, 0, colUsable, "volumes' usable size"})
	steps = append(steps, step{"planned", st.DemandGB, 0, colDemand, "what the plan needs on the volumes"})

	const left, top, plotH, barW, gap = 60.0, 42.0, 220.0, 70.0, 26.0
	width := left + float64(len(steps))*(barW+gap) + 10
	height := top + plotH + 50
	var b svgBuf
	b.open(id, width, height, "Storage Spaces Direct: raw to usable capacity")
	b.text(4, 16, "start", colText, 14, "Storage: raw to usable (TB)")
	max := math.Max(st.RawGB, st.DemandGB)
	if max <= 0 {
		max = 1
	}
	y := func(gb float64) float64 { return top + plotH - gb/max*plotH }
	for k := 0; k <= 4; k++ {
		gb := max * float64(k) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e4e7eb"/>`, left-4, width-10, y(gb), y(gb))
		b.text(left-8, y(gb)+4, "end", colMuted, 10, f1(gb/1000))
	}
	for i, s := range steps {
		x := left + float64(i)*(barW+gap)
		lo, hi := math.Min(s.from, s.to), math.Max(s.from, s.to)
		b.rect(x, y(hi), barW, y(lo)-y(hi), s.fill, fmt.Sprintf("%s: %s TB (%s)", s.label, f1((hi-lo)/1000), s.note))
		if i > 0 && i < len(steps)-2 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#8a96a3" stroke-dasharray="3,2"/>`, x-gap, x, y(s.from), y(s.from))
		}
		sign := ""
		if i > 0 && i < len(steps)-2 {
			sign = "-"
		}
		b.text(x+barW/2, y(hi)-4, "middle", colText, 11, sign+f1((hi-lo)/1000))
		b.text(x+barW/2, top+plotH+16, "middle", colText, 11, s.label)
	}
	b.text(left, top+plotH+36, "start", colMuted, 10, fmt.Sprintf("%s capacity, %d fault domains; cache %s adds no capacity", st.Media, st.FaultDomains, orNone(st.CacheTier)))
	return b.close()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// IPChart is the node IP pool and the VIP pool: assigned, held for updates, free, and any shortfall in red.
func IPChart(id string, n hardware.NetworkResult) template.HTML {
	pools := []hardware.PoolUsage{n.NodePool, n.VIPPool}
	labels := []string{"node IP pool", "VIP pool"}
	const left, barW, barH, rowH, top = 120.0, 460.0, 18.0, 44.0, 30.0
	width := left + barW + 190
	height := top + rowH*2 + 24
	var b svgBuf
	b.open(id, width, height, "IP and VIP pool usage")
	b.text(4, 16, "start", colText, 14, "Address pools")
	for i, p := range pools {
		yy := top + rowH*float64(i)
		b.text(4, yy+barH-4, "start", colText, 12, labels[i])
		if n.Mode == hardware.DHCP && i == 0 {
			b.rect(left, yy, barW, barH, colDown, "node addresses come from DHCP")
			b.text(left+barW/2, yy+barH-5, "middle", colText, 11, "DHCP (not modeled)")
			continue
		}
		scale := barW / math.Max(1, math.Max(float64(p.Size), float64(p.Need)))
		capW := float64(p.Size) * scale
		assigned := math.Min(float64(p.Assigned), float64(p.Size))
		reserved := math.Min(float64(p.Reserved), float64(p.Size)-assigned)
		b.rect(left, yy, assigned*scale, barH, colUsed, fmt.Sprintf("assigned: %d", p.Assigned))
		b.rect(left+assigned*scale, yy, reserved*scale, barH, colReserve, fmt.Sprintf("held for updates: %d", p.Reserved))
		b.rect(left+(assigned+reserved)*scale, yy, float64(p.Free)*scale, barH, colFree, fmt.Sprintf("free: %d", p.Free))
		if p.Need > p.Size {
			b.rect(left+capW, yy, float64(p.Need-p.Size)*scale, barH, colOverflow, fmt.Sprintf("short by %d addresses", p.Need-p.Size))
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#8a96a3" stroke-width="0.6"/>`, left, yy, capW, barH)
		b.text(left+barW+8, yy+barH-5, "start", colText, 11, fmt.Sprintf("%d of %d used", p.Need, p.Size))
		b.text(left, yy+barH+12, "start", colMuted, 10, strings.Join(p.Ranges, ", "))
	}
	b.text(4, top+rowH*2+14, "start", colMuted, 10, fmt.Sprintf("%d addresses reserved for AKS in total (Microsoft recommends at least 256)", n.Total))
	return b.close()
}

// Legend is the colour key of the host charts.
func Legend() template.HTML {
	items := []struct{ col, label string }{{colUsed, "used by VMs"}, {colReserve, "failover reserve"}, {colFree, "free"}, {colDown, "host down"}}
	var b svgBuf
	b.open("legend", 520, 22, "Legend")
	x := 4.0
	for _, it := range items {
		b.rect(x, 5, 14, 12, it.col, it.label)
		b.text(x+18, 15, "start", colText, 11, it.label)
		x += 125
	}
	return b.close()
}
