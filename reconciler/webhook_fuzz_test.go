package reconciler_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

// FuzzWebhookHandler posts arbitrary payloads to the engine's Gitea push webhook, signed with its secret
// or not. The reconciler is built but not started (nothing reaches a cluster); it holds one
// GitRepository. The handler must never panic or answer 5xx, must refuse every badly signed payload with
// 401, and a signed push must answer 200 with JSON listing the GitRepository exactly when the payload's
// clone_url or html_url is that repository's URL. `go tool task fuzz` searches further.
func FuzzWebhookHandler(f *testing.F) {
	const repoURL = "http://127.0.0.1:3000/platform/fleet.git"
	f.Add([]byte(`{"ref":"refs/heads/main","after":"3b18e512","repository":{"clone_url":"`+repoURL+`","full_name":"platform/fleet"}}`), "push", true)
	f.Add([]byte(`{"ref":"refs/heads/main","repository":{"html_url":"HTTP://user:pw@127.0.0.1:3000/platform/fleet/"}}`), "push", true)
	f.Add([]byte(`{"repository":{"clone_url":"http://127.0.0.1:3000/platform/other.git"}}`), "push", true)
	f.Add([]byte(`{"repository":{"clone_url":"`+repoURL+`"}}`), "push", false)
	f.Add([]byte(`{"action":"opened"}`), "pull_request", true)
	f.Add([]byte(`{"repository":{"clone_url":":%zz"}}`), "", true)
	f.Add([]byte(`[]`), "push", true)
	secret := []byte("fuzz-webhook-secret")
	r, err := reconciler.New(&rest.Config{Host: "https://127.0.0.1:1"}, reconciler.Options{Cluster: "fuzz", WorkDir: f.TempDir(), WebhookSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(r.Stop)
	if err := r.ApplyGitRepository(&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: repoURL, Interval: metav1.Duration{Duration: 60e9}}}); err != nil {
		f.Fatal(err)
	}
	h := r.WebhookHandler()
	f.Fuzz(func(t *testing.T, body []byte, event string, signed bool) {
		req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		req.Header.Set("X-Gitea-Event", event)
		if signed {
			mac := hmac.New(sha256.New, secret)
			mac.Write(body)
			req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%d for a client's payload: %s", rec.Code, rec.Body)
		case !signed:
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("unsigned payload answered %d", rec.Code)
			}
		case rec.Code == http.StatusOK && (event == "" || event == "push"):
			var out struct{ Triggered []string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("200 without JSON: %q", rec.Body)
			}
			var p struct {
				Repository struct {
					CloneURL string `json:"clone_url"`
					HTMLURL  string `json:"html_url"`
				} `json:"repository"`
			}
			_ = json.Unmarshal(body, &p)
			if exact := p.Repository.CloneURL == repoURL || p.Repository.HTMLURL == repoURL; exact && !slices.Contains(out.Triggered, "flux-system/fleet") {
				t.Fatalf("payload for %s did not trigger its GitRepository: %s", repoURL, rec.Body)
			}
			if len(out.Triggered) > 1 || (len(out.Triggered) == 1 && out.Triggered[0] != "flux-system/fleet") {
				t.Fatalf("triggered sources that do not exist: %v", out.Triggered)
			}
		}
	})
}
