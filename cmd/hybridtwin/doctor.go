package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

func newDoctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine: pinned tools in the cache, Docker engine, Go, free disk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), cmd.OutOrStdout())
		},
	}
}

func runDoctor(ctx context.Context, w io.Writer) error {
	c, err := toolcache.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "tool cache: %s\n", c.Dir)
	if c.Source == "" {
		fmt.Fprintf(w, "tool sources: not found (run from a hybridtwin clone or set %s to build tools)\n", toolcache.EnvSource)
	} else {
		fmt.Fprintf(w, "tool sources: %s\n", c.Source)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tPINNED\tSTATE\tPATH")
	missing := 0
	for _, t := range toolcache.Pinned() {
		st := c.Stat(ctx, t)
		state := "built"
		switch {
		case st.Built:
		case st.Problem != "":
			state, missing = "stale (reports "+orUnknown(st.Reported)+")", missing+1
		case t.Optional:
			state = "not built (optional: reconciler: flux)"
		default:
			state, missing = "not built", missing+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Version, state, st.Path)
	}
	_ = tw.Flush()
	if missing > 0 {
		fmt.Fprintf(w, "  %d tools to build: run `go tool task tools` (cold: ~30 min on 2 cores, once per machine)\n", missing)
	}

	fmt.Fprintf(w, "go: %s (hybridtwin built with %s)\n", goToolchainVersion(ctx), runtime.Version())
	fmt.Fprintf(w, "docker engine: %s\n", dockerEngine(ctx))
	fmt.Fprintf(w, "free disk at %s: %s\n", existingParent(c.Dir), freeDisk(existingParent(c.Dir)))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func goToolchainVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "not found on PATH (needed to build the pinned tools)"
	}
	return strings.TrimSpace(string(out))
}

// dockerEngine pings the engine API on DOCKER_HOST (unix sockets only) or /var/run/docker.sock. The kind
// cluster provider needs it; the embedded provider and the Git server (a local Gitea process) do not.
func dockerEngine(ctx context.Context) string {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			return "DOCKER_HOST=" + h + " is not a unix socket; not checked"
		}
		sock = strings.TrimPrefix(h, "unix://")
	}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return "not checked: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "not answering at " + sock + " (the kind provider needs one; the embedded provider does not)"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("answered %s at %s", resp.Status, sock)
	}
	return fmt.Sprintf("answering at %s (%s)", sock, strings.TrimSpace(string(body)))
}

func existingParent(p string) string {
	for d := p; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			return d
		}
	}
}

func freeDisk(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown: " + err.Error()
	}
	free := float64(st.Bavail) * float64(st.Bsize) / (1 << 30)
	note := ""
	// RECIPES.md: a cold tool build adds ~1 GB to GOMODCACHE and ~2.8 GB to GOCACHE, plus the binaries.
	if free < 6 {
		note = " (low: a cold tool build needs about 6 GiB for the Go caches and binaries)"
	}
	return fmt.Sprintf("%.1f GiB%s", free, note)
}
