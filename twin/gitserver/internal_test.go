package gitserver

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestAppINIGolden pins the generated app.ini (fixed secrets, paths and port).
func TestAppINIGolden(t *testing.T) {
	c := appConfig{
		Dir: "/state/gitea", Host: "127.0.0.1", Port: 40123, SSHPort: 2222, RunUser: "twin", AsRoot: true,
		Secrets: secrets{SecretKey: "SECRETKEY", InternalToken: "INTERNALTOKEN", JWTSecret: "JWTSECRET"},
		Profile: DefaultProfile(),
	}
	got := c.render()
	golden := filepath.Join("testdata", "app.ini.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run AppINIGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("app.ini differs from %s (run with -update if intended):\n%s", golden, got)
	}
	// Every section appears once; the top keys come before the first section.
	if strings.Count(got, "[server]") != 1 || strings.Index(got, "RUN_USER") > strings.Index(got, "[server]") {
		t.Errorf("sections are not grouped:\n%s", got)
	}
}

func TestSecretsAreReusedOnRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ini")
	s1, err := loadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	c := appConfig{Dir: dir, Host: "127.0.0.1", Port: 1, RunUser: "u", Secrets: s1, Profile: DefaultProfile()}
	if err := os.WriteFile(path, []byte(c.render()), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := loadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Errorf("secrets after reload differ: %+v vs %+v", s1, s2)
	}
	if err := os.WriteFile(path, []byte("[server]\nHTTP_PORT = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSecrets(path); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("foreign app.ini: err = %v, want ErrInvalidOptions", err)
	}
}

func TestRedactor(t *testing.T) {
	r := &redactor{}
	r.add("abc") // too short to hide
	r.add("0123456789abcdef")
	base := errors.New("push with token 0123456789abcdef failed at abc")
	err := r.err(base)
	if strings.Contains(err.Error(), "0123456789abcdef") || !strings.Contains(err.Error(), redacted) || !strings.Contains(err.Error(), "abc") {
		t.Errorf("redacted error = %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("redaction broke errors.Is")
	}
	if e := errors.New("nothing secret"); r.err(e) != e {
		t.Error("an error without secrets should pass through unchanged")
	}
	if got := redactPasswordLine("generated random password is 'p4ss'\nok"); strings.Contains(got, "p4ss") {
		t.Errorf("password line not redacted: %q", got)
	}
}

func TestProfileValidation(t *testing.T) {
	if err := DefaultProfile().validate(); err != nil {
		t.Fatalf("DefaultProfile invalid: %v", err)
	}
	for name, mutate := range map[string]func(*Profile){
		"version":   func(p *Profile) { p.Version = "" },
		"admin":     func(p *Profile) { p.AdminUser = "" },
		"timeout":   func(p *Profile) { p.ReadyTimeout = 0 },
		"deliver":   func(p *Profile) { p.WebhookDeliverTimeout = 500 * time.Millisecond },
		"approvals": func(p *Profile) { p.RequiredApprovals = -1 },
		"log level": func(p *Profile) { p.LogLevel = "Loud" },
	} {
		p := DefaultProfile()
		mutate(&p)
		if err := p.validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 90 * time.Second: "90s", 1500 * time.Millisecond: "1.5s"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%s) = %q, want %q", d, got, want)
		}
	}
}
