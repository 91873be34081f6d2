package chartmirror

import (
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// packageCharts packages each chart folder into dir with the Helm SDK, as `helm package` does
// (<name>-<version>.tgz), refusing two folders of the same chart name and version. Each Chart's Ref is
// the archive's path.
func packageCharts(folders []string, dir string) ([]Chart, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []Chart
	seen := map[string]string{}
	for _, f := range folders {
		c, err := loader.LoadDir(f)
		if err != nil {
			return nil, fmt.Errorf("load chart folder %s: %w", f, err)
		}
		key := c.Name() + "-" + c.Metadata.Version
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("chart folders %s and %s are both %s %s; a repository holds one chart per name and version", other, f, c.Name(), c.Metadata.Version)
		}
		seen[key] = f
		tgz, err := chartutil.Save(c, dir)
		if err != nil {
			return nil, fmt.Errorf("package chart folder %s: %w", f, err)
		}
		out = append(out, Chart{Name: c.Name(), Version: c.Metadata.Version, Folder: f, Ref: tgz})
	}
	return out, nil
}

// writeIndex writes dir/index.yaml for the archives in dir with the SDK's repository index, the one
// `helm repo index` writes. Chart URLs are relative (<name>-<version>.tgz), so clients resolve them
// against the repository URL they asked for -- the upstream URL, through the proxy -- as Helm and
// source-controller do.
func writeIndex(dir string) error {
	idx, err := repo.IndexDirectory(dir, "")
	if err != nil {
		return fmt.Errorf("index %s: %w", dir, err)
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		return fmt.Errorf("write index.yaml: %w", err)
	}
	return nil
}
