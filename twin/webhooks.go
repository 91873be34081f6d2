package twin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// Push webhooks: a platform team wires its Git server's push webhook to a Flux notification-controller
// Receiver so a push is fetched at once instead of at the next source interval (Flux "Receivers" guide;
// Arc's default syncIntervalInSeconds is 600). The twin does the same for its own reconcilers: each one
// serves reconciler.WebhookHandler on a loopback port, and every seeded repository gets a Gitea push
// webhook to it, signed with a secret per reconciler (HMAC-SHA256, X-Gitea-Signature). The source
// interval stays as the configuration sets it, as with a Receiver. Clusters running real Flux keep
// polling: the twin does not run notification-controller.

// webhookHeaderTimeout bounds reading a delivery's headers; Gitea's own DELIVER_TIMEOUT is 5 s
// (twin/gitserver profile, Gitea config cheat sheet).
const webhookHeaderTimeout = 5 * time.Second

// webhookSecret is a fresh random HMAC key.
func webhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// serveWebhooks starts the cluster's receiver and registers a push webhook on every seeded repository;
// stopping the cluster deletes the webhooks and closes the receiver.
func (t *Twin) serveWebhooks(ctx context.Context, clusterName string, rec *reconciler.Reconciler, secret string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("push webhook receiver of %s: %w", clusterName, err)
	}
	srv := &http.Server{Handler: rec.WebhookHandler(), ReadHeaderTimeout: webhookHeaderTimeout}
	go func() { _ = srv.Serve(ln) }()
	admin := t.git.Admin()
	url := "http://" + ln.Addr().String() + "/"
	type hook struct {
		repo int
		id   int64
	}
	var hooks []hook
	t.onStop("push webhooks "+clusterName, func(ctx context.Context) error {
		var errs []error
		for _, h := range hooks {
			if err := admin.DeleteWebhook(ctx, t.gitRepos[h.repo], h.id); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, srv.Close())
		return errors.Join(errs...)
	})
	for i, repo := range t.gitRepos {
		id, err := admin.CreateWebhook(ctx, repo, gitserver.Webhook{URL: url, Secret: secret, Events: []string{"push"}})
		if err != nil {
			return fmt.Errorf("push webhook of %s on %s: %w", clusterName, repo, err)
		}
		hooks = append(hooks, hook{i, id})
	}
	return nil
}
