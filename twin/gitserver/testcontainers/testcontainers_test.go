package testcontainers_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	gtc "github.com/hybridtwin/hybridtwin/twin/gitserver/testcontainers"
)

func TestRequestDefaults(t *testing.T) {
	req, err := gtc.Request(gtc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Image != gtc.DefaultImage {
		t.Errorf("Image = %q, want %q", req.Image, gtc.DefaultImage)
	}
	if !req.Started {
		t.Error("Started = false; the request must start the container")
	}
	if len(req.ExposedPorts) != 1 || req.ExposedPorts[0] != "3000/tcp" {
		t.Errorf("ExposedPorts = %v, want [3000/tcp]", req.ExposedPorts)
	}
	for key, want := range map[string]string{
		"GITEA__security__INSTALL_LOCK":            "true",
		"GITEA__database__DB_TYPE":                 "sqlite3",
		"GITEA__server__HTTP_PORT":                 "3000",
		"GITEA__server__ROOT_URL":                  "http://localhost:3000/",
		"GITEA__server__DISABLE_SSH":               "true",
		"GITEA__webhook__ALLOWED_HOST_LIST":        "loopback,private",
		"GITEA__webhook__DELIVER_TIMEOUT":          "5",
		"GITEA__cron_0X2E_update_checker__ENABLED": "false",
		"GITEA____APP_NAME":                        "hybridtwin",
		"GITEA__repository__DEFAULT_BRANCH":        "main",
	} {
		if got, ok := req.Env[key]; !ok || got != want {
			t.Errorf("Env[%s] = %q (set %v), want %q", key, got, ok, want)
		}
	}
	for _, key := range []string{"GITEA__security__SECRET_KEY", "GITEA__security__INTERNAL_TOKEN", "GITEA__oauth2__JWT_SECRET"} {
		if len(req.Env[key]) < 32 {
			t.Errorf("Env[%s] = %q, want a generated secret", key, req.Env[key])
		}
	}
	// Local paths belong to the local server only.
	for key := range req.Env {
		if strings.Contains(key, "WORK_PATH") || strings.Contains(key, "APP_DATA_PATH") || strings.Contains(key, "RUN_USER") {
			t.Errorf("Env holds a local-only setting %s", key)
		}
	}

	hs, ok := req.WaitingFor.(*wait.HTTPStrategy)
	if !ok {
		t.Fatalf("WaitingFor is %T, want *wait.HTTPStrategy", req.WaitingFor)
	}
	if hs.Path != "/api/v1/version" || hs.Port.Port() != "3000" {
		t.Errorf("wait strategy polls port %s path %s, want 3000 /api/v1/version", hs.Port.Port(), hs.Path)
	}
	if to := hs.Timeout(); to == nil || *to != gitserver.DefaultProfile().ReadyTimeout {
		t.Errorf("wait timeout = %v, want the profile's ReadyTimeout", to)
	}
	if hs.PollInterval != gitserver.DefaultProfile().ReadyPoll {
		t.Errorf("poll interval = %s, want the profile's ReadyPoll", hs.PollInterval)
	}
	if !hs.StatusCodeMatcher(200) || hs.StatusCodeMatcher(503) {
		t.Error("status matcher must accept 200 only")
	}
	if !hs.ResponseMatcher(strings.NewReader(`{"version":"1.26.4"}`)) {
		t.Error("response matcher refuses the pinned version")
	}
	if hs.ResponseMatcher(strings.NewReader(`{"version":"1.25.0"}`)) {
		t.Error("response matcher accepts another version")
	}
}

func TestRequestFreshSecretsEachTime(t *testing.T) {
	a, err := gtc.Request(gtc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := gtc.Request(gtc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Env["GITEA__security__SECRET_KEY"] == b.Env["GITEA__security__SECRET_KEY"] {
		t.Error("two requests share a SECRET_KEY")
	}
}

func TestRequestProfileAndImage(t *testing.T) {
	p := gitserver.DefaultProfile()
	p.ReadyTimeout = 3 * time.Minute
	p.WebhookDeliverTimeout = 9 * time.Second
	req, err := gtc.Request(gtc.Options{Image: "docker.gitea.com/gitea:1.26.4", Profile: &p, Name: "gitea-under-test"})
	if err != nil {
		t.Fatal(err)
	}
	if req.Image != "docker.gitea.com/gitea:1.26.4" || req.Name != "gitea-under-test" {
		t.Errorf("image %q name %q", req.Image, req.Name)
	}
	if req.Env["GITEA__webhook__DELIVER_TIMEOUT"] != "9" {
		t.Errorf("DELIVER_TIMEOUT = %q, want 9", req.Env["GITEA__webhook__DELIVER_TIMEOUT"])
	}
	if hs := req.WaitingFor.(*wait.HTTPStrategy); *hs.Timeout() != 3*time.Minute {
		t.Errorf("wait timeout = %s", *hs.Timeout())
	}
}

func TestRequestRejectsBadOptions(t *testing.T) {
	old := gitserver.DefaultProfile()
	old.GiteaVersion = "1.21.0"
	cases := []struct {
		name    string
		opts    gtc.Options
		mention string
	}{
		{"no tag", gtc.Options{Image: "docker.gitea.com/gitea"}, "has no tag"},
		{"registry port but no tag", gtc.Options{Image: "localhost:5000/gitea"}, "has no tag"},
		{"other version", gtc.Options{Image: "docker.gitea.com/gitea:1.22.0"}, "the profile pins 1.26.4"},
		{"profile version mismatch", gtc.Options{Profile: &old}, "the profile pins 1.21.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gtc.Request(tc.opts)
			if !errors.Is(err, gtc.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want ErrInvalidOptions mentioning %q", err, tc.mention)
			}
		})
	}
}

func TestEnvKey(t *testing.T) {
	for _, tc := range []struct{ section, key, want string }{
		{"server", "ROOT_URL", "GITEA__server__ROOT_URL"},
		{"", "APP_NAME", "GITEA____APP_NAME"},
		{"cron.update_checker", "ENABLED", "GITEA__cron_0X2E_update_checker__ENABLED"},
		{"queue.issue-indexer", "TYPE", "GITEA__queue_0X2E_issue_0X2D_indexer__TYPE"},
	} {
		if got := gtc.EnvKey(tc.section, tc.key); got != tc.want {
			t.Errorf("EnvKey(%q, %q) = %q, want %q", tc.section, tc.key, got, tc.want)
		}
	}
}

func TestParseCreatedToken(t *testing.T) {
	tok := strings.Repeat("0123456789", 4)
	out := "generated random password is 'hunter2hunter2'\nNew user 'twin-admin' has been successfully created!\nAccess token was successfully created... " + tok + "\n"
	got, err := gitserver.ParseCreatedToken(out)
	if err != nil || got != tok {
		t.Fatalf("ParseCreatedToken = %q, %v", got, err)
	}
	_, err = gitserver.ParseCreatedToken("generated random password is 'hunter2hunter2'\n")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v; want an error that does not repeat the output", err)
	}
}
