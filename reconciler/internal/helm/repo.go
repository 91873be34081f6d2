package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// Errors callers can test for; they carry source-controller's failure reasons.
var (
	// ErrIndex: the repository's index.yaml could not be fetched or read (IndexationFailed).
	ErrIndex = errors.New("failed to fetch Helm repository index")
	// ErrChartReference: no chart of that name, or no version matching the constraint
	// (source-controller's InvalidChartReference; it needs a spec change or a new chart version).
	ErrChartReference = errors.New("invalid chart reference")
	// ErrChartPull: the chart could not be downloaded or pulled (ChartPullError).
	ErrChartPull = errors.New("chart pull error")
	// ErrChartPackage: a chart directory could not be loaded or packaged (ChartPackageError).
	ErrChartPackage = errors.New("chart package error")
)

// Auth is a repository login, as a HelmRepository's spec.secretRef holds it (keys username, password;
// ca.crt for a private CA).
type Auth struct {
	Username, Password string
	CABundle           []byte
	// Transport, when set, carries every request (the twin's chart mirror, which resolves the upstream
	// URLs a repository names); nil is Go's default transport.
	Transport *http.Transport
}

// IndexFile is the name of a chart repository's index, under the repository URL and in the
// HelmRepository's artifact.
const IndexFile = "index.yaml"

// FetchIndex downloads <repoURL>/index.yaml, checks that it is a chart repository index, and returns
// its bytes and its revision: "sha256:<hex>" of the bytes, as source-controller's HelmRepository
// revision is the digest of the index.
func FetchIndex(ctx context.Context, repoURL string, auth *Auth) ([]byte, string, error) {
	u := strings.TrimSuffix(repoURL, "/") + "/" + IndexFile
	b, err := get(ctx, u, auth)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if _, err := ParseIndex(b); err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrIndex, u, err)
	}
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseIndex reads a chart repository index, its entries sorted newest version first.
func ParseIndex(b []byte) (*repo.IndexFile, error) {
	idx := &repo.IndexFile{}
	if err := yaml.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("failed to load Helm repository from index YAML: %w", err)
	}
	if idx.APIVersion == "" {
		return nil, errors.New("failed to load Helm repository from index YAML: no API version specified")
	}
	idx.SortEntries()
	return idx, nil
}

// Resolve picks the chart version of the index that matches the constraint ("" and "*" mean the newest
// stable version), source-controller's way: an exact version first, else the newest in range.
func Resolve(idx *repo.IndexFile, name, version string) (*repo.ChartVersion, error) {
	if version == "" {
		version = "*"
	}
	if _, ok := idx.Entries[name]; !ok {
		return nil, fmt.Errorf("%w: no chart name found: '%s'", ErrChartReference, name)
	}
	if _, err := semver.NewConstraint(version); err != nil {
		return nil, fmt.Errorf("%w: invalid version constraint '%s': %v", ErrChartReference, version, err)
	}
	cv, err := idx.Get(name, version)
	if err != nil || cv == nil || len(cv.URLs) == 0 {
		return nil, fmt.Errorf("%w: no '%s' chart with version matching '%s' found", ErrChartReference, name, version)
	}
	return cv, nil
}

// Download fetches a chart version's package from the repository (its first URL, relative to the
// repository URL unless absolute).
func Download(ctx context.Context, repoURL string, cv *repo.ChartVersion, auth *Auth) ([]byte, error) {
	u, err := repo.ResolveReferenceURL(repoURL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChartPull, err)
	}
	b, err := get(ctx, u, auth)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChartPull, err)
	}
	return b, nil
}

func get(ctx context.Context, u string, auth *Auth) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c := http.DefaultClient
	if auth != nil {
		if auth.Username != "" || auth.Password != "" {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
		var t *http.Transport
		if auth.Transport != nil {
			t = auth.Transport.Clone()
		}
		if len(auth.CABundle) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(auth.CABundle) {
				return nil, errors.New("ca.crt holds no PEM certificate")
			}
			if t == nil {
				t = &http.Transport{}
			}
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		if t != nil {
			c = &http.Client{Transport: t}
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// PullOCI pulls chart name from an OCI Helm repository (oci://host/path): the newest tag matching
// the version constraint ("" and "*" mean the newest), with plain HTTP when insecure. It returns the
// packaged chart and its version.
func PullOCI(ctx context.Context, repoURL, name, version string, insecure bool, auth *Auth) ([]byte, string, error) {
	ref := strings.TrimSuffix(strings.TrimPrefix(repoURL, registry.OCIScheme+"://"), "/") + "/" + name
	opts := []registry.ClientOption{
		// No credentials file of the machine's user is read: logins come from spec.secretRef only.
		registry.ClientOptCredentialsFile(filepath.Join(os.TempDir(), "hybridtwin-no-helm-registry-config.json")),
		registry.ClientOptWriter(io.Discard),
	}
	if insecure {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if auth != nil && (auth.Username != "" || auth.Password != "") {
		opts = append(opts, registry.ClientOptBasicAuth(auth.Username, auth.Password))
	}
	if auth != nil && auth.Transport != nil {
		opts = append(opts, registry.ClientOptHTTPClient(&http.Client{Transport: auth.Transport}))
	}
	c, err := registry.NewClient(opts...)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrChartPull, err)
	}
	if version == "" {
		version = "*"
	}
	cons, err := semver.NewConstraint(version)
	if err != nil {
		return nil, "", fmt.Errorf("%w: invalid version constraint '%s': %v", ErrChartReference, version, err)
	}
	if ctx.Err() != nil {
		return nil, "", ctx.Err()
	}
	tags, err := c.Tags(ref)
	if err != nil {
		return nil, "", fmt.Errorf("%w: list the tags of '%s': %v", ErrChartPull, ref, err)
	}
	picked := ""
	for _, t := range tags { // newest first
		if v, err := semver.NewVersion(t); err == nil && cons.Check(v) {
			picked = t
			break
		}
	}
	if picked == "" {
		return nil, "", fmt.Errorf("%w: no '%s' chart with version matching '%s' found", ErrChartReference, name, version)
	}
	res, err := c.Pull(ref+":"+picked, registry.PullOptWithChart(true))
	if err != nil {
		return nil, "", fmt.Errorf("%w: pull '%s:%s': %v", ErrChartPull, ref, picked, err)
	}
	return res.Chart.Data, picked, nil
}

// Package packages the chart directory dir (as `helm package` does) and returns the package and the
// chart's metadata.
func Package(dir string) ([]byte, *chart.Metadata, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: load chart directory: %v", ErrChartPackage, err)
	}
	tmp, err := os.MkdirTemp("", "hybridtwin-chart-")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrChartPackage, err)
	}
	defer os.RemoveAll(tmp)
	p, err := chartutil.Save(ch, tmp)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrChartPackage, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrChartPackage, err)
	}
	return b, ch.Metadata, nil
}

// LoadPackage reads a packaged chart.
func LoadPackage(b []byte) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChartPackage, err)
	}
	return ch, nil
}

// LoadArtifact loads the chart of an artifact directory: a packaged chart (*.tgz) as a HelmChart stores
// it, or a chart directory (Chart.yaml at the root or in the one top folder) as an OCIRepository whose
// layer is a chart stores it.
func LoadArtifact(dir string) (*chart.Chart, error) {
	if tgz, _ := filepath.Glob(filepath.Join(dir, "*.tgz")); len(tgz) == 1 {
		ch, err := loader.LoadFile(tgz[0])
		if err != nil {
			return nil, fmt.Errorf("could not load chart: %w", err)
		}
		return ch, nil
	}
	root := dir
	if _, err := os.Stat(filepath.Join(root, "Chart.yaml")); err != nil {
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || !entries[0].IsDir() {
			return nil, errors.New("could not load chart: the artifact holds neither a packaged chart nor a chart directory")
		}
		root = filepath.Join(dir, entries[0].Name())
	}
	ch, err := loader.LoadDir(root)
	if err != nil {
		return nil, fmt.Errorf("could not load chart: %w", err)
	}
	return ch, nil
}
