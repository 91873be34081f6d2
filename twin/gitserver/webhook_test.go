package gitserver_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	// HMAC-SHA256("secret", body), as Gitea computes it (hex).
	sig := gitserver.Sign(body, "secret")
	if len(sig) != 64 {
		t.Fatalf("signature %q is not 64 hex digits", sig)
	}
	if err := gitserver.VerifySignature(body, "secret", sig); err != nil {
		t.Errorf("valid signature refused: %v", err)
	}
	if err := gitserver.VerifySignature(body, "secret", strings.ToUpper(sig)); err != nil {
		t.Errorf("upper-case hex refused: %v", err)
	}
	for name, tc := range map[string]struct{ body, secret, sig string }{
		"other secret": {string(body), "other", sig},
		"changed body": {`{"ref":"refs/heads/evil"}`, "secret", sig},
		"empty sig":    {string(body), "secret", ""},
		"not hex":      {string(body), "secret", "zz"},
		"short":        {string(body), "secret", sig[:10]},
		"no secret":    {string(body), "", gitserver.Sign(body, "")},
	} {
		if err := gitserver.VerifySignature([]byte(tc.body), tc.secret, tc.sig); !errors.Is(err, gitserver.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestReceiver(t *testing.T) {
	var called []string
	r := gitserver.NewReceiver("s3cret-value", func(d gitserver.Delivery) { called = append(called, d.ID) })
	srv := httptest.NewServer(r)
	defer srv.Close()

	post := func(body, sig, event, id string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewBufferString(body))
		req.Header.Set(gitserver.SignatureHeader, sig)
		req.Header.Set(gitserver.EventHeader, event)
		req.Header.Set(gitserver.DeliveryHeader, id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	push := `{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"org/repo"}}`
	if code := post(push, gitserver.Sign([]byte(push), "wrong"), "push", "forged"); code != http.StatusUnauthorized {
		t.Errorf("forged delivery: %d, want 401", code)
	}
	if code := post(push, gitserver.Sign([]byte(push), "s3cret-value"), "push", "d1"); code != http.StatusNoContent {
		t.Errorf("signed delivery: %d, want 204", code)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	if r.Rejected() != 1 || len(r.Deliveries()) != 1 || len(called) != 1 || called[0] != "d1" {
		t.Fatalf("rejected %d, deliveries %d, callbacks %v", r.Rejected(), len(r.Deliveries()), called)
	}
	d, err := r.Wait(context.Background(), func(d gitserver.Delivery) bool { return d.Event == "push" })
	if err != nil || d.ID != "d1" {
		t.Fatalf("Wait = %+v, %v", d, err)
	}
	e, err := d.Push()
	if err != nil || e.After != "b" || e.Repository.FullName != "org/repo" {
		t.Errorf("Push() = %+v, %v", e, err)
	}
	// Waiting for a delivery that never comes ends with the context, saying what was seen.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Wait(ctx, func(d gitserver.Delivery) bool { return d.Event == "pull_request" }); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 received, 1 rejected") {
		t.Errorf("Wait on a cancelled context: %v", err)
	}
	if _, err := (gitserver.Delivery{ID: "x", Event: "pull_request"}).Push(); err == nil {
		t.Error("Push() on a pull_request delivery succeeded")
	}
}
