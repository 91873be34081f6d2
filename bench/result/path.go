package result

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnvDir names the environment variable that points the drivers at a run directory: `go tool task
// bench` sets it to out/bench/<UTC timestamp>/ so every driver of one run writes next to the others. A
// relative value is taken from the module root (the folder with go.mod), not from the driver's package
// folder that `go test` runs in.
const EnvDir = "HYBRIDTWIN_BENCH_DIR"

// DefaultDir is where a driver writes without EnvDir: bench/results/, seen from a driver's package folder
// (bench/<driver>/), which is where `go test` runs it.
var DefaultDir = filepath.Join("..", "results")

// OutPath is the file a driver writes its result to: name inside $HYBRIDTWIN_BENCH_DIR (created if
// needed), or inside DefaultDir.
func OutPath(name string) (string, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return filepath.Join(DefaultDir, name), nil
	}
	if !filepath.IsAbs(dir) {
		root, err := moduleRoot()
		if err != nil {
			return "", fmt.Errorf("%s=%s is relative: %w; give an absolute path", EnvDir, dir, err)
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the benchmark run directory %s=%s: %w", EnvDir, dir, err)
	}
	return filepath.Join(dir, name), nil
}

// moduleRoot is the nearest folder at or above the working directory holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod at or above " + wd)
		}
	}
}

// OutPathFlag is OutPath for a flag's default value, which cannot return an error: when the run
// directory cannot be made, it is still the path inside it, and writing the file there reports the
// problem with the path in the message.
func OutPathFlag(name string) string {
	p, err := OutPath(name)
	if err != nil {
		return filepath.Join(os.Getenv(EnvDir), name)
	}
	return p
}
