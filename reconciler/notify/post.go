package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

// How Flux's controllers post an event to notification-controller (fluxcd/pkg/runtime events.Recorder,
// the recorder every controller started with --events-addr uses): a JSON POST of the v1beta1.Event with a
// 5 s client timeout, retried on connection errors and 5xx answers by hashicorp/go-retryablehttp's default
// client (RetryMax 4, waits from 1 s doubling up to 30 s), and never retried when notification-controller
// answers 429 (it drops a duplicate within its rate-limit interval).
const (
	postTimeout  = 5 * time.Second
	postRetries  = 4
	postWaitMin  = 1 * time.Second
	postWaitMax  = 30 * time.Second
	postQueueLen = 1024 // as Forwarder's buffer: a full queue drops the event rather than stall the engine
)

// Post sends one event to notification-controller's event endpoint (url, e.g. http://127.0.0.1:9090/) as
// Flux's controllers do, retrying as they do. It returns the last error once the retries are spent.
func Post(ctx context.Context, client *http.Client, url string, ev eventv1.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	wait := postWaitMin
	var last error
	for attempt := 0; ; attempt++ {
		last = postOnce(ctx, client, url, body)
		if last == nil || attempt == postRetries {
			break
		}
		if _, final := last.(finalError); final {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, postWaitMax)
	}
	if fe, ok := last.(finalError); ok {
		return fe.error
	}
	return last
}

// finalError is an answer that is not retried (a 4xx).
type finalError struct{ error }

func postOnce(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return finalError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil // a duplicate notification-controller rate-limits: delivered already
	case resp.StatusCode >= 500:
		return fmt.Errorf("post event to %s: %s", url, resp.Status)
	default:
		return finalError{fmt.Errorf("post event to %s: %s", url, resp.Status)}
	}
}

// Poster returns a function for reconciler.Options.OnEvent that posts every event, in Flux's shape
// (FromReconciler), to notification-controller's event endpoint url, as a Flux controller started with
// --events-addr does. It does not block the reconciler: events queue for one goroutine that posts them in
// order until ctx ends; a full queue drops the event and logs it.
func Poster(ctx context.Context, url string, log *slog.Logger) func(reconciler.Event) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Timeout: postTimeout}
	queue := make(chan reconciler.Event, postQueueLen)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-queue:
				if err := Post(ctx, client, url, FromReconciler(ev)); err != nil && ctx.Err() == nil {
					log.Warn("event not delivered to notification-controller", "err", err,
						"object", ev.Namespace+"/"+ev.Name, "reason", ev.Reason)
				}
			}
		}
	}()
	return func(ev reconciler.Event) {
		select {
		case queue <- ev:
		default:
			log.Warn("event queue full; event dropped", "object", ev.Namespace+"/"+ev.Name, "reason", ev.Reason)
		}
	}
}
