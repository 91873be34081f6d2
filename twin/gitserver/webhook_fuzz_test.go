package gitserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// FuzzReceiver sends arbitrary webhook deliveries to a Receiver: a body, an event name and a signature
// that is right, absent, or of another body. The receiver must never panic or answer 5xx; it must accept
// exactly the correctly signed deliveries (204, kept byte for byte) and refuse the others (401, counted),
// and decoding an accepted push must return an event or an error, never panic. The seed corpus runs with
// `go test`; `go tool task fuzz` searches further.
func FuzzReceiver(f *testing.F) {
	push := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"3b18e512dba79e4c8300dd08aeb37f8e728b8dad",` +
		`"repository":{"full_name":"platform/fleet","clone_url":"http://127.0.0.1:3000/platform/fleet.git"},"pusher":{"login":"platform"}}`
	f.Add([]byte(push), "push", uint8(0))
	f.Add([]byte(push), "push", uint8(1))
	f.Add([]byte(push), "push", uint8(2))
	f.Add([]byte(`{"action":"opened","number":1}`), "pull_request", uint8(0))
	f.Add([]byte(`{"ref":1}`), "push", uint8(0))
	f.Add([]byte(`[`), "push", uint8(0))
	f.Add([]byte{}, "", uint8(0))
	const secret = "fuzz-secret"
	f.Fuzz(func(t *testing.T, body []byte, event string, mode uint8) {
		rcv := gitserver.NewReceiver(secret, nil)
		req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		req.Header.Set(gitserver.EventHeader, event)
		req.Header.Set(gitserver.DeliveryHeader, "fuzz-1")
		valid := false
		switch mode % 3 {
		case 0:
			req.Header.Set(gitserver.SignatureHeader, gitserver.Sign(body, secret))
			valid = true
		case 1: // signed with another secret
			req.Header.Set(gitserver.SignatureHeader, gitserver.Sign(body, secret+"x"))
		case 2: // no signature
		}
		rec := httptest.NewRecorder()
		rcv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for a client's delivery: %s", rec.Code, rec.Body)
		}
		got := rcv.Deliveries()
		if !valid {
			if rec.Code != http.StatusUnauthorized || len(got) != 0 || rcv.Rejected() != 1 {
				t.Fatalf("badly signed delivery: %d, %d kept, %d rejected", rec.Code, len(got), rcv.Rejected())
			}
			return
		}
		if rec.Code != http.StatusNoContent || len(got) != 1 || !bytes.Equal(got[0].Body, body) || got[0].Event != event {
			t.Fatalf("signed delivery: %d, kept %+v", rec.Code, got)
		}
		ev, err := got[0].Push()
		if event != "push" {
			if err == nil {
				t.Fatalf("a %q delivery decoded as a push", event)
			}
			return
		}
		if err == nil && !json.Valid(body) {
			t.Fatalf("invalid JSON decoded as push %+v", ev)
		}
	})
}
