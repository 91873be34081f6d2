package reconciler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
)

// maxWebhookBody bounds a push payload. Gitea caps payloads it sends by the number of commits
// (setting webhook.PAYLOAD_COMMIT_LIMIT, default 15 commits); 4 MiB is far above that.
const maxWebhookBody = 4 << 20

// ErrSignature is returned by VerifyGiteaSignature for a missing or wrong signature.
var ErrSignature = errors.New("webhook signature mismatch")

// VerifyGiteaSignature checks Gitea's X-Gitea-Signature header: the hex HMAC-SHA256 of the body keyed
// with the webhook secret (Gitea services/webhook/deliver.go).
func VerifyGiteaSignature(secret, body []byte, header string) error {
	if header == "" {
		return fmt.Errorf("%w: no X-Gitea-Signature header", ErrSignature)
	}
	got, err := hex.DecodeString(strings.TrimPrefix(header, "sha256="))
	if err != nil {
		return fmt.Errorf("%w: header is not hex", ErrSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrSignature
	}
	return nil
}

// giteaPush is the part of Gitea's push payload the reconciler reads.
type giteaPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Repository struct {
		CloneURL string `json:"clone_url"`
		HTMLURL  string `json:"html_url"`
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// WebhookHandler receives Gitea push webhooks (HMAC-verified with Options.WebhookSecret) and fetches
// every GitRepository whose URL is the pushed repository at once, like a Flux notification-controller
// Receiver annotating its sources. It answers 200 with the list of triggered GitRepositories.
func (r *Reconciler) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST a Gitea push payload", http.StatusMethodNotAllowed)
			return
		}
		if len(r.opts.WebhookSecret) == 0 {
			http.Error(w, "webhook disabled: the reconciler has no WebhookSecret", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody+1))
		if err != nil || len(body) > maxWebhookBody {
			http.Error(w, "cannot read payload (limit 4 MiB)", http.StatusBadRequest)
			return
		}
		if err := VerifyGiteaSignature(r.opts.WebhookSecret, body, req.Header.Get("X-Gitea-Signature")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if ev := req.Header.Get("X-Gitea-Event"); ev != "" && ev != "push" {
			w.WriteHeader(http.StatusOK)
			_, _ = fmt.Fprintf(w, "{\"ignored\":%q}\n", ev)
			return
		}
		var p giteaPush
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "payload is not a Gitea push event: "+err.Error(), http.StatusBadRequest)
			return
		}
		triggered := r.TriggerRepository(p.Repository.CloneURL, p.Repository.HTMLURL)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"triggered": triggered})
	})
}

// TriggerRepository fetches at once every GitRepository whose spec.url is one of urls (compared
// without credentials, trailing slash or ".git", scheme and host case-insensitively), and returns their
// "namespace/name".
func (r *Reconciler) TriggerRepository(urls ...string) []string {
	want := map[string]bool{}
	for _, u := range urls {
		if n := normalizeGitURL(u); n != "" {
			want[n] = true
		}
	}
	r.mu.Lock()
	var keys []core.Key
	for ref, st := range r.srcs {
		if repo, ok := st.obj.(*sourcev1.GitRepository); ok && want[normalizeGitURL(repo.Spec.URL)] {
			keys = append(keys, ref.key)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(keys, func(a, b core.Key) int { return strings.Compare(a.String(), b.String()) })
	names := make([]string, len(keys))
	for i, k := range keys {
		r.srcQueue.Add(srcRef{KindGitRepository, k})
		names[i] = k.String()
	}
	return names
}

func normalizeGitURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return ""
	}
	u.User = nil
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
