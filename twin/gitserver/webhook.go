package gitserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"code.gitea.io/sdk/gitea"
)

// Headers Gitea sets on every webhook delivery.
const (
	// SignatureHeader carries the hex HMAC-SHA256 of the body, keyed with the webhook's secret.
	SignatureHeader = "X-Gitea-Signature"
	// EventHeader names the event ("push", "pull_request", ...).
	EventHeader = "X-Gitea-Event"
	// DeliveryHeader is the delivery's unique id.
	DeliveryHeader = "X-Gitea-Delivery"
)

// ErrBadSignature is returned when a webhook body does not match its signature.
var ErrBadSignature = errors.New("webhook signature does not match")

// maxWebhookBody caps what a receiver reads of one delivery. Gitea's push payload lists at most
// [webhook] PAYLOAD_COMMIT_LIMIT commits (15 by default, Gitea config cheat sheet); 5 MiB is far above that.
const maxWebhookBody = 5 << 20

// Sign is the signature Gitea puts in SignatureHeader for body and secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a delivery's SignatureHeader against its body, in constant time. It wraps
// ErrBadSignature on a mismatch, an empty or malformed signature, or an empty secret.
func VerifySignature(body []byte, secret, signature string) error {
	if secret == "" {
		return fmt.Errorf("%w: the receiver has no secret; configure the webhook with one", ErrBadSignature)
	}
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not a hex SHA-256 HMAC", ErrBadSignature, SignatureHeader)
	}
	want, _ := hex.DecodeString(Sign(body, secret))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}

// Webhook is a repository webhook delivering JSON to URL, signed with Secret.
type Webhook struct {
	URL    string
	Secret string
	// Events are Gitea event names; empty means push and pull_request.
	Events []string
	// BranchFilter limits push events to matching branches (a glob); empty means all.
	BranchFilter string
}

// CreateWebhook adds a webhook to repo and returns its id; if repo has a webhook to the same URL already, it
// returns that one's id and changes nothing. The secret is redacted from errors.
func (c *Client) CreateWebhook(ctx context.Context, repo Repo, w Webhook) (int64, error) {
	if err := repo.validate(); err != nil {
		return 0, err
	}
	if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
		return 0, fmt.Errorf("gitserver: webhook URL %q for %s: %w; give http(s)://host:port/path", w.URL, repo, ErrInvalidOptions)
	}
	if w.Secret == "" {
		return 0, fmt.Errorf("gitserver: webhook for %s has no secret: %w; receivers verify %s with it", repo, ErrInvalidOptions, SignatureHeader)
	}
	c.red.add(w.Secret)
	events := w.Events
	if len(events) == 0 {
		events = []string{"push", "pull_request"}
	}
	var id int64
	err := c.call(ctx, "list webhooks of "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		hooks, resp, err := g.ListRepoHooks(repo.Owner, repo.Name, gitea.ListHooksOptions{})
		for _, h := range hooks {
			if h.Config["url"] == w.URL {
				id = h.ID
			}
		}
		return resp, err
	})
	if err != nil || id != 0 {
		return id, err // a hook to this URL exists: keep it
	}
	err = c.call(ctx, "create webhook on "+repo.String(), func(g *gitea.Client) (*gitea.Response, error) {
		h, resp, err := g.CreateRepoHook(repo.Owner, repo.Name, gitea.CreateHookOption{
			Type:         gitea.HookTypeGitea,
			Config:       map[string]string{"url": w.URL, "content_type": "json", "secret": w.Secret, "http_method": "post"},
			Events:       events,
			BranchFilter: w.BranchFilter,
			Active:       true,
		})
		if err == nil {
			id = h.ID
		}
		return resp, err
	})
	return id, err
}

// DeleteWebhook removes a repository webhook by the id CreateWebhook returned; one already gone is not
// an error.
func (c *Client) DeleteWebhook(ctx context.Context, repo Repo, id int64) error {
	if err := repo.validate(); err != nil {
		return err
	}
	return c.call(ctx, fmt.Sprintf("delete webhook %d of %s", id, repo), func(g *gitea.Client) (*gitea.Response, error) {
		resp, err := g.DeleteRepoHook(repo.Owner, repo.Name, id)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return resp, nil
		}
		return resp, err
	})
}

// Delivery is one webhook request a Receiver accepted.
type Delivery struct {
	ID       string // DeliveryHeader
	Event    string // EventHeader
	Body     []byte
	Received time.Time
}

// PushEvent is the part of a push payload a GitOps receiver acts on.
type PushEvent struct {
	Ref        string `json:"ref"`    // "refs/heads/main"
	Before     string `json:"before"` // previous commit
	After      string `json:"after"`  // new commit
	Repository struct {
		FullName string `json:"full_name"` // "owner/name"
		CloneURL string `json:"clone_url"`
	} `json:"repository"`
	Pusher struct {
		Login string `json:"login"`
	} `json:"pusher"`
}

// Push decodes a push delivery.
func (d Delivery) Push() (PushEvent, error) {
	var e PushEvent
	if d.Event != "push" {
		return e, fmt.Errorf("gitserver: delivery %s is a %q event, not push", d.ID, d.Event)
	}
	if err := json.Unmarshal(d.Body, &e); err != nil {
		return e, fmt.Errorf("gitserver: decode push delivery %s: %w", d.ID, err)
	}
	return e, nil
}

// Receiver is an http.Handler that accepts Gitea webhook deliveries whose signature matches its secret
// (answering 401 otherwise) and keeps them. A reconciler's webhook endpoint can use it as is, or call
// VerifySignature itself.
type Receiver struct {
	secret string

	mu         sync.Mutex
	deliveries []Delivery
	rejected   int
	changed    chan struct{} // closed and replaced on every accepted delivery
	onDelivery func(Delivery)
}

// NewReceiver returns a receiver for deliveries signed with secret. onDelivery, if not nil, is called for
// every accepted delivery, in the request's goroutine.
func NewReceiver(secret string, onDelivery func(Delivery)) *Receiver {
	return &Receiver{secret: secret, changed: make(chan struct{}), onDelivery: onDelivery}
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "webhook deliveries are POST requests", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody+1))
	if err != nil || len(body) > maxWebhookBody {
		http.Error(w, "cannot read the delivery body", http.StatusBadRequest)
		return
	}
	if err := VerifySignature(body, r.secret, req.Header.Get(SignatureHeader)); err != nil {
		r.mu.Lock()
		r.rejected++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	d := Delivery{ID: req.Header.Get(DeliveryHeader), Event: req.Header.Get(EventHeader), Body: body, Received: time.Now()}
	r.mu.Lock()
	r.deliveries = append(r.deliveries, d)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if r.onDelivery != nil {
		r.onDelivery(d)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Deliveries are the accepted deliveries, oldest first.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Rejected is how many requests failed signature verification.
func (r *Receiver) Rejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

// Wait returns the first accepted delivery (already received or still to come) for which match is true,
// or an error when ctx ends. Gitea delivers webhooks asynchronously, from a queue.
func (r *Receiver) Wait(ctx context.Context, match func(Delivery) bool) (Delivery, error) {
	seen := 0
	for {
		r.mu.Lock()
		pending := r.deliveries[seen:]
		seen = len(r.deliveries)
		changed := r.changed
		r.mu.Unlock()
		for _, d := range pending {
			if match == nil || match(d) {
				return d, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Delivery{}, fmt.Errorf("gitserver: waiting for a webhook delivery (%d received, %d rejected): %w", seen, r.Rejected(), ctx.Err())
		}
	}
}
