package notify_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/fakes/alerts"
	"github.com/hybridtwin/hybridtwin/reconciler/notify"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func startSink(t *testing.T, kind alerts.Kind, key []byte) *alerts.Sink {
	t.Helper()
	s, err := alerts.Start(kind, alerts.Options{HMACKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func failing(msg string) eventv1.Event {
	return eventv1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Kustomization", Name: "apps", Namespace: "flux-system",
			APIVersion: "kustomize.toolkit.fluxcd.io/v1"},
		Severity: eventv1.EventSeverityError, Timestamp: metav1.Now(), Reason: "BuildFailed", Message: msg,
		Metadata:            map[string]string{"kustomize.toolkit.fluxcd.io/revision": "main@sha1:4f1c2a0e"},
		ReportingController: "kustomize-controller",
	}
}

// A Kustomization that keeps failing emits the same error event at every retry; each sink gets exactly one
// alert per rate-limit interval, carrying the object and the reason.
func TestFailingReconcileAlertsOncePerInterval(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	d := notify.New(notify.WithClock(clk.Now))
	hmacKey := []byte("s3cret")
	slack := startSink(t, alerts.Slack, nil)
	teams := startSink(t, alerts.Teams, nil)
	generic := startSink(t, alerts.Generic, hmacKey)
	for _, p := range []notify.Provider{
		{Name: "slack", Type: notify.Slack, Address: slack.URL(), Channel: "#platform"},
		{Name: "teams", Type: notify.MSTeams, Address: teams.URL()},
		{Name: "hook", Type: notify.GenericHMAC, Address: generic.URL(), Secret: hmacKey},
	} {
		if err := d.SetProvider(p); err != nil {
			t.Fatal(err)
		}
		if err := d.SetAlert(notify.Alert{Name: "on-" + p.Name, Namespace: "flux-system", ProviderRef: p.Name,
			EventSources: []notify.EventSource{{Kind: "Kustomization", Name: "*"}}, Summary: "cluster workload-1"}); err != nil {
			t.Fatal(err)
		}
	}

	msg := "kustomization path not found: stat /tmp/apps/prod: no such file or directory"
	for range 5 { // retries at retryInterval 1m for 4 minutes
		if err := d.Handle(context.Background(), failing(msg)); err != nil {
			t.Fatal(err)
		}
		clk.Step(time.Minute)
	}
	for _, s := range []*alerts.Sink{slack, teams, generic} {
		got := s.Deliveries()
		if len(got) != 1 {
			t.Fatalf("%s received %d alerts for one failure, want exactly 1 (rejected: %v)", s.Kind(), len(got), s.Rejected())
		}
		a := got[0]
		if a.Object != "kustomization/apps.flux-system" || a.Severity != "error" || a.Message != msg {
			t.Errorf("%s alert = object %q severity %q message %q", s.Kind(), a.Object, a.Severity, a.Message)
		}
		if s.Kind() != alerts.Generic && a.Fields["summary"] != "cluster workload-1" {
			t.Errorf("%s alert lacks the summary: %v", s.Kind(), a.Fields)
		}
	}
	if r := generic.Deliveries()[0]; r.Fields["reason"] != "BuildFailed" || r.Header.Get("gotk-component") != "kustomize-controller" {
		t.Errorf("generic alert reason %q component %q", r.Fields["reason"], r.Header.Get("gotk-component"))
	}
	limited := 0
	for _, r := range d.Records() {
		if r.Outcome == notify.RateLimited {
			limited++
		}
	}
	if limited != 12 {
		t.Errorf("%d rate-limited records, want 12 (4 repeats x 3 providers)", limited)
	}

	// After the interval the still-failing object alerts again; a new message alerts at once.
	clk.Step(notify.DefaultRateLimitInterval)
	_ = d.Handle(context.Background(), failing(msg))
	_ = d.Handle(context.Background(), failing("health check failed: Deployment/apps/web not ready"))
	if n := len(slack.Deliveries()); n != 3 {
		t.Errorf("slack has %d alerts after the interval and a new failure, want 3", n)
	}
}

func TestAlertSelection(t *testing.T) {
	d := notify.New()
	sink := startSink(t, alerts.Generic, nil)
	if err := d.SetProvider(notify.Provider{Name: "hook", Type: notify.Generic, Address: sink.URL()}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetAlert(notify.Alert{Name: "errors", Namespace: "flux-system", ProviderRef: "hook", EventSeverity: "error",
		EventSources:  []notify.EventSource{{Kind: "Kustomization", Name: "apps"}},
		ExclusionList: []string{"^dependency .* is not ready$"}}); err != nil {
		t.Fatal(err)
	}
	info := failing("Reconciliation finished in 1.2s, next run in 10m0s")
	info.Severity = eventv1.EventSeverityInfo
	other := failing("build failed")
	other.InvolvedObject.Name = "infra"
	otherNS := failing("build failed")
	otherNS.InvolvedObject.Namespace = "team-a"
	excluded := failing("dependency 'flux-system/infra' is not ready")
	wanted := failing("build failed")
	for _, ev := range []eventv1.Event{info, other, otherNS, excluded, wanted} {
		if err := d.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.Deliveries()
	if len(got) != 1 || got[0].Message != "build failed" || got[0].Object != "kustomization/apps.flux-system" {
		t.Fatalf("deliveries = %+v, want only the error from flux-system/apps", got)
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	d := notify.New()
	err := d.SetProvider(notify.Provider{Name: "x", Type: "pager", Address: "not a url"})
	if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), "pager") || !strings.Contains(err.Error(), "not a url") {
		t.Errorf("bad provider: %v", err)
	}
	err = d.SetAlert(notify.Alert{Name: "a", Namespace: "ns", ProviderRef: "missing", EventSeverity: "warning", InclusionList: []string{"("}})
	for _, want := range []string{"warning", "eventSources", "missing", "inclusionList"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad alert error does not mention %q: %v", want, err)
		}
	}
}

func TestSinksRejectWhatTheRealServicesWould(t *testing.T) {
	key := []byte("k")
	cases := []struct {
		kind alerts.Kind
		key  []byte
		body string
		sig  string
	}{
		{alerts.Slack, nil, `{"username":"x"}`, ""}, // no text, no attachments: Slack's no_text
		{alerts.Slack, nil, `{not json`, ""},        // invalid_payload
		{alerts.Teams, nil, `{"type":"message","attachments":[{"contentType":"text/plain"}]}`, ""},
		{alerts.Generic, nil, `{"message":"m"}`, ""},          // not a Flux event
		{alerts.Generic, key, `{"message":"m"}`, "sha256=00"}, // bad signature
	}
	for _, c := range cases {
		s := startSink(t, c.kind, c.key)
		req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(c.body))
		if c.sig != "" {
			req.Header.Set("X-Signature", c.sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || len(s.Deliveries()) != 0 || len(s.Rejected()) != 1 {
			t.Errorf("%s accepted %s: status %d deliveries %d", c.kind, c.body, resp.StatusCode, len(s.Deliveries()))
		}
	}
}
