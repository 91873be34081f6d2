package spec

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ChartSource is one entry of spec.charts: an upstream Helm chart source, by the URL a HelmRepository's
// spec.url names, and the chart folders that stand in for it. The twin's chart mirror (twin/chartmirror)
// packages the folders and makes the unchanged URL resolve inside the twin, for both engines:
//
//	charts:
//	- url: https://kubernetes.github.io/ingress-nginx
//	  charts: [charts/ingress-nginx]
//	- url: oci://ghcr.io/stefanprodan/charts
//	  charts: [charts/podinfo]
type ChartSource struct {
	// URL is https://host/path or http://host/path (a Helm HTTP repository, HelmRepository type default),
	// or oci://host/path (charts in an OCI registry, HelmRepository type oci; a chart is
	// oci://host/path/<chart name>).
	URL string `yaml:"url" json:"url"`
	// Charts are chart folders (relative to the spec), each with a Chart.yaml; one folder per chart
	// version the repository serves.
	Charts []string `yaml:"charts" json:"charts"`
}

// chartName is a chart name an OCI repository path can hold (lower case; Helm's own rule for chart
// names is looser, but an oci:// chart name becomes a repository path component).
var chartName = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

// checkCharts validates spec.charts: each URL is https, http or oci with a host and no query, given once;
// each chart folder exists and holds a Chart.yaml with a name and a version, each name and version at most
// once per source.
func (s *Spec) checkCharts(v *validator) {
	seen := map[string]int{}
	for i, c := range s.Spec.Charts {
		at := fmt.Sprintf("spec.charts[%d]", i)
		oci := false
		if key, ok := checkChartURL(v, at+".url", c.URL); ok {
			if j, dup := seen[key]; dup {
				v.addAt(at+".url", "%s is mirrored already by spec.charts[%d]; list all its chart folders there", c.URL, j)
			}
			seen[key] = i
			oci = strings.HasPrefix(key, "oci://")
		}
		if len(c.Charts) == 0 {
			v.addAt(at+".charts", "list at least one chart folder (a folder with a Chart.yaml, relative to the spec)")
		}
		versions := map[string]int{}
		for j, f := range c.Charts {
			fat := fmt.Sprintf("%s.charts[%d]", at, j)
			name, version, ok := s.checkChartFolder(v, fat, f)
			if !ok {
				continue
			}
			if oci && !chartName.MatchString(name) {
				v.addAt(fat, "chart name %q cannot be an OCI repository name (lower-case letters, digits, '.', '_', '-')", name)
			}
			key := name + " " + version
			if k, dup := versions[key]; dup {
				v.addAt(fat, "chart %s %s is given already as charts[%d]; a repository serves one chart per name and version", name, version, k)
			}
			versions[key] = j
		}
	}
}

// checkChartURL validates a chart source URL and returns it normalised (scheme and host lower case, the
// default port and a trailing slash dropped), to find a source given twice.
func checkChartURL(v *validator, field, raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		v.addAt(field, "%q is not a URL; give the HelmRepository's spec.url, e.g. https://kubernetes.github.io/ingress-nginx or oci://ghcr.io/stefanprodan/charts", raw)
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "https" && scheme != "http" && scheme != "oci":
		v.addAt(field, "%q: the scheme must be https or http (a Helm repository) or oci (charts in an OCI registry)", raw)
		return "", false
	case u.Host == "":
		v.addAt(field, "%q names no host; give scheme://host/path", raw)
		return "", false
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.addAt(field, "%q: give scheme://host/path, without credentials, query or fragment", raw)
		return "", false
	}
	path := strings.TrimRight(u.Path, "/")
	if scheme == "oci" && path != "" && !imageRepo.MatchString(strings.TrimPrefix(path, "/")) {
		v.addAt(field, "%q: the path must be a lower-case repository path, e.g. oci://ghcr.io/stefanprodan/charts", raw)
		return "", false
	}
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && ((port == "443" && scheme != "http") || (port == "80" && scheme == "http")) {
		host = h
	}
	return scheme + "://" + host + path, true
}

// checkChartFolder checks that a chart folder exists and holds a Chart.yaml with a name and a version,
// and returns them.
func (s *Spec) checkChartFolder(v *validator, field, folder string) (name, version string, ok bool) {
	if folder == "" {
		v.addAt(field, "is empty; give a chart folder relative to the spec")
		return "", "", false
	}
	dir := s.Path(folder)
	st, err := os.Stat(dir)
	if err != nil {
		v.addAt(field, "chart folder %s does not exist; give a path relative to the spec", dir)
		return "", "", false
	}
	if !st.IsDir() {
		v.addAt(field, "%s is a file, not a chart folder (packaged .tgz charts are not taken: give the unpacked folder)", dir)
		return "", "", false
	}
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		v.addAt(field, "%s has no Chart.yaml; a chart folder holds Chart.yaml, values.yaml and templates/", dir)
		return "", "", false
	}
	var meta struct {
		Name    string `yaml:"name"`
		Version string `yaml:"version"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		v.addAt(field, "%s: Chart.yaml is not YAML: %v", dir, err)
		return "", "", false
	}
	if meta.Name == "" || meta.Version == "" {
		v.addAt(field, "%s: Chart.yaml must give name and version", dir)
		return "", "", false
	}
	return meta.Name, meta.Version, true
}
