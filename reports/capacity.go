package reports

import (
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/netip"
	"strings"
	texttemplate "text/template"

	"github.com/hybridtwin/hybridtwin/hardware"
)

// Format is an output format of a report.
type Format string

const (
	HTML     Format = "html"
	JSON     Format = "json"
	Markdown Format = "md"
)

// Formats lists the formats, for flag help.
var Formats = []Format{HTML, JSON, Markdown}

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown report format %q; use html, json or md", s)
}

// Ext is the file extension of a format.
func (f Format) Ext() string { return string(f) }

//go:embed templates/*.tmpl
var templates embed.FS

var funcs = map[string]any{
	"pct": func(x float64) string {
		s := fmt.Sprintf("%.1f%%", x*100)
		return strings.Replace(s, ".0%", "%", 1)
	},
	"num": func(x float64) string {
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%.1f", x)
	},
	"join": func(xs []string) string { return strings.Join(xs, ", ") },
	"addr": func(a netip.Addr) string {
		if !a.IsValid() {
			return "-"
		}
		return a.String()
	},
	"bounds": func(min, max int) string {
		switch {
		case max > 0 && min > 0:
			return fmt.Sprintf("%d-%d", min, max)
		case max > 0:
			return fmt.Sprintf("<= %d", max)
		case min > 0:
			return fmt.Sprintf(">= %d", min)
		}
		return "no documented maximum"
	},
	"pools": func(n hardware.NetworkResult) []hardware.PoolUsage {
		return []hardware.PoolUsage{n.NodePool, n.VIPPool}
	},
}

var (
	htmlTmpl = htmltemplate.Must(htmltemplate.New("capacity.html.tmpl").Funcs(funcs).ParseFS(templates, "templates/capacity.html.tmpl"))
	mdTmpl   = texttemplate.Must(texttemplate.New("capacity.md.tmpl").Funcs(funcs).ParseFS(templates, "templates/capacity.md.tmpl"))
)

type capacityView struct {
	R         *hardware.Result
	Legend    htmltemplate.HTML
	Before    htmltemplate.HTML
	After     htmltemplate.HTML
	Waterfall htmltemplate.HTML
	IPs       htmltemplate.HTML
}

// WriteCapacity renders a capacity result in the format.
func WriteCapacity(w io.Writer, f Format, r *hardware.Result) error {
	switch f {
	case HTML:
		return CapacityHTML(w, r)
	case Markdown:
		return CapacityMarkdown(w, r)
	case JSON:
		return CapacityJSON(w, r)
	}
	return fmt.Errorf("unknown report format %q", f)
}

// CapacityHTML writes a self-contained HTML page: inline SVG charts, inline CSS, no scripts, no network.
func CapacityHTML(w io.Writer, r *hardware.Result) error {
	v := capacityView{
		R:         r,
		Legend:    Legend(),
		Before:    HostChart("hosts-before", "Now: all hosts up", r.Hosts),
		Waterfall: StorageWaterfall("storage-waterfall", r.Storage),
		IPs:       IPChart("ip-pools", r.Network),
	}
	if r.Failover.Checked {
		v.After = HostChart("hosts-after", "After losing "+r.Failover.WorstHost+" (the worst single failure)", r.Failover.After)
	}
	return htmlTmpl.Execute(w, v)
}

// CapacityMarkdown writes the report as Markdown tables.
func CapacityMarkdown(w io.Writer, r *hardware.Result) error {
	return mdTmpl.Execute(w, capacityView{R: r})
}

// CapacityJSON writes the result as indented JSON (the hardware.Result schema).
func CapacityJSON(w io.Writer, r *hardware.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
