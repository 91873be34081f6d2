package reports

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium. In CI (CI=true) a missing browser fails the test; elsewhere
// the test is skipped with the install hint.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on PATH; install it to render the HTML report: apt-get install -y chromium (Debian)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runChromium runs headless Chromium in its own process group and kills the whole group when it returns,
// so no renderer or zygote process outlives the test.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	// A safety stop for a hung browser, not a speed check.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		if kerr := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
			t.Logf("kill chromium process group: %v", kerr)
		}
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestCapacityHTMLInChromium renders the 2-node report in headless Chromium: the DOM must hold the four
// charts, and the screenshot must show them (the chart colours of used capacity, reserve and the failed host).
func TestCapacityHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "capacity.html")
	var buf bytes.Buffer
	if err := CapacityHTML(&buf, analyze(t, "edge-2node")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, "--dump-dom", "file://"+page))
	for _, id := range []string{"hosts-before", "hosts-after", "storage-waterfall", "ip-pools", "legend"} {
		if !strings.Contains(dom, `<svg id="`+id+`"`) {
			t.Errorf("rendered DOM lacks the %s chart", id)
		}
	}
	if !strings.Contains(dom, "DOES NOT FIT") {
		t.Error("rendered DOM lacks the verdict")
	}

	shot := filepath.Join(dir, "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1400,2000", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 2000 {
		t.Fatalf("screenshot is %v, want 1400x2000", b)
	}
	want := map[string][3]uint8{"used": {0x2f, 0x6f, 0xb3}, "reserve": {0xe3, 0xa2, 0x1a}, "host down": {0xb9, 0xb9, 0xb9}, "resiliency": {0xd9, 0x53, 0x4f}}
	seen := count(img, want)
	for name, n := range seen {
		// A bar is hundreds of pixels; a stray anti-aliased pixel is not a chart.
		if n < 500 {
			t.Errorf("screenshot shows %d pixels of the %q colour; the charts did not render", n, name)
		}
	}
}

func count(img image.Image, want map[string][3]uint8) map[string]int {
	seen := map[string]int{}
	for name := range want {
		seen[name] = 0
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for name, c := range want {
				if uint8(r>>8) == c[0] && uint8(g>>8) == c[1] && uint8(bl>>8) == c[2] {
					seen[name]++
				}
			}
		}
	}
	return seen
}
