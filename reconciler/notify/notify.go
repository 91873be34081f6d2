package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
)

// DefaultRateLimitInterval is how long an identical event is suppressed after it was sent. Source:
// notification-controller's --rate-limit-interval flag, default 5m.
const DefaultRateLimitInterval = 5 * time.Minute

// DefaultPostTimeout bounds one delivery. Source: notification-controller posts with a 15 s client timeout.
const DefaultPostTimeout = 15 * time.Second

// ProviderType is a notification Provider's spec.type.
type ProviderType string

// The provider types the twin delivers to.
const (
	Slack       ProviderType = "slack"
	MSTeams     ProviderType = "msteams"
	Generic     ProviderType = "generic"
	GenericHMAC ProviderType = "generic-hmac"
)

// Provider is a notification Provider (notification.toolkit.fluxcd.io/v1beta3): where alerts go.
type Provider struct {
	Name     string
	Type     ProviderType
	Address  string
	Channel  string // slack
	Username string // slack; the event's reporting controller by default
	Secret   []byte // generic-hmac: the HMAC key
}

// EventSource selects events by their involved object (Alert spec.eventSources).
type EventSource struct {
	Kind      string // required, e.g. "Kustomization"
	Name      string // "*" or empty for all
	Namespace string // empty: the alert's namespace
}

// Alert is a notification Alert (notification.toolkit.fluxcd.io/v1beta3).
type Alert struct {
	Name          string
	Namespace     string
	ProviderRef   string // Provider name
	EventSeverity string // "info" (default: info and error) or "error"
	EventSources  []EventSource
	InclusionList []string // regexps; when set, a message must match one
	ExclusionList []string // regexps; a message matching one is dropped
	EventMetadata map[string]string
	Summary       string // added as metadata "summary"
	Suspend       bool
}

// Outcome says what happened to one event for one alert.
type Outcome string

// Outcomes, recorded per event and alert.
const (
	Sent        Outcome = "sent"
	RateLimited Outcome = "rate-limited"
	Failed      Outcome = "failed"
)

// Record is one dispatch decision, for scenarios and reports.
type Record struct {
	Alert    string
	Provider string
	Object   string
	Reason   string
	Outcome  Outcome
	Error    string
	At       time.Time
}

// Dispatcher routes events to providers by alerts.
type Dispatcher struct {
	now      func() time.Time
	interval time.Duration
	client   *http.Client

	mu        sync.Mutex
	providers map[string]Provider
	alerts    []compiledAlert
	sent      map[string]time.Time // event key -> last sent
	records   []Record
}

type compiledAlert struct {
	Alert
	include, exclude []*regexp.Regexp
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithClock injects the clock used for rate limiting.
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// WithRateLimitInterval overrides DefaultRateLimitInterval.
func WithRateLimitInterval(i time.Duration) Option { return func(d *Dispatcher) { d.interval = i } }

// WithHTTPClient overrides the delivery client.
func WithHTTPClient(c *http.Client) Option { return func(d *Dispatcher) { d.client = c } }

// New returns a Dispatcher with no providers or alerts.
func New(opts ...Option) *Dispatcher {
	d := &Dispatcher{now: time.Now, interval: DefaultRateLimitInterval,
		client: &http.Client{Timeout: DefaultPostTimeout}, providers: map[string]Provider{}, sent: map[string]time.Time{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// ErrInvalid is wrapped by configuration errors.
var ErrInvalid = errors.New("invalid notification configuration")

// SetProvider adds or replaces a Provider.
func (d *Dispatcher) SetProvider(p Provider) error {
	var problems []string
	if p.Name == "" {
		problems = append(problems, "name is empty")
	}
	switch p.Type {
	case Slack, MSTeams, Generic, GenericHMAC:
	default:
		problems = append(problems, fmt.Sprintf("type %q is not one of slack, msteams, generic, generic-hmac", p.Type))
	}
	if u, err := url.ParseRequestURI(p.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		problems = append(problems, fmt.Sprintf("address %q is not an http(s) URL", p.Address))
	}
	if p.Type == GenericHMAC && len(p.Secret) == 0 {
		problems = append(problems, "generic-hmac needs a secret (the HMAC key)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("provider %q: %w: %s", p.Name, ErrInvalid, strings.Join(problems, "; "))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.providers[p.Name] = p
	return nil
}

// SetAlert adds or replaces an Alert (by namespace/name).
func (d *Dispatcher) SetAlert(a Alert) error {
	var problems []string
	if a.EventSeverity == "" {
		a.EventSeverity = eventv1.EventSeverityInfo
	}
	if a.EventSeverity != eventv1.EventSeverityInfo && a.EventSeverity != eventv1.EventSeverityError {
		problems = append(problems, fmt.Sprintf("eventSeverity %q must be info or error", a.EventSeverity))
	}
	if len(a.EventSources) == 0 {
		problems = append(problems, "eventSources is empty: name at least one source kind")
	}
	for i, s := range a.EventSources {
		if s.Kind == "" {
			problems = append(problems, fmt.Sprintf("eventSources[%d].kind is empty", i))
		}
	}
	ca := compiledAlert{Alert: a}
	for _, p := range a.InclusionList {
		re, err := regexp.Compile(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("inclusionList %q: %v", p, err))
			continue
		}
		ca.include = append(ca.include, re)
	}
	for _, p := range a.ExclusionList {
		re, err := regexp.Compile(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("exclusionList %q: %v", p, err))
			continue
		}
		ca.exclude = append(ca.exclude, re)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.providers[a.ProviderRef]; !ok {
		problems = append(problems, fmt.Sprintf("providerRef %q names no provider", a.ProviderRef))
	}
	if len(problems) > 0 {
		return fmt.Errorf("alert %s/%s: %w: %s", a.Namespace, a.Name, ErrInvalid, strings.Join(problems, "; "))
	}
	d.alerts = slices.DeleteFunc(d.alerts, func(x compiledAlert) bool { return x.Name == a.Name && x.Namespace == a.Namespace })
	d.alerts = append(d.alerts, ca)
	sort.Slice(d.alerts, func(i, j int) bool {
		return d.alerts[i].Namespace+"/"+d.alerts[i].Name < d.alerts[j].Namespace+"/"+d.alerts[j].Name
	})
	return nil
}

// Records returns every dispatch decision so far.
func (d *Dispatcher) Records() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Record(nil), d.records...)
}

// Handle routes one event to every alert that selects it, delivering synchronously. It returns the
// delivery errors joined; rate-limited events are not errors.
func (d *Dispatcher) Handle(ctx context.Context, ev eventv1.Event) error {
	type job struct {
		alert    compiledAlert
		provider Provider
	}
	d.mu.Lock()
	var jobs []job
	for _, a := range d.alerts {
		if a.matches(ev) {
			jobs = append(jobs, job{a, d.providers[a.ProviderRef]})
		}
	}
	d.mu.Unlock()

	var errs []error
	for _, j := range jobs {
		e := ev
		e.Metadata = map[string]string{}
		for k, v := range ev.Metadata {
			e.Metadata[k] = v
		}
		for k, v := range j.alert.EventMetadata {
			if _, ok := e.Metadata[k]; !ok {
				e.Metadata[k] = v
			}
		}
		if j.alert.Summary != "" {
			e.Metadata["summary"] = j.alert.Summary
		}
		rec := Record{Alert: j.alert.Namespace + "/" + j.alert.Name, Provider: j.provider.Name, Object: objectName(ev), Reason: ev.Reason, At: d.now()}
		key := j.provider.Name + "/" + EventKey(ev)
		d.mu.Lock()
		last, seen := d.sent[key]
		limited := seen && d.now().Sub(last) < d.interval
		if !limited {
			d.sent[key] = d.now()
		}
		d.mu.Unlock()
		if limited {
			rec.Outcome = RateLimited
		} else if err := d.post(ctx, j.provider, e); err != nil {
			rec.Outcome, rec.Error = Failed, err.Error()
			errs = append(errs, fmt.Errorf("alert %s to provider %s: %w", rec.Alert, j.provider.Name, err))
			d.mu.Lock()
			delete(d.sent, key) // a failed delivery does not count against the rate limit
			d.mu.Unlock()
		} else {
			rec.Outcome = Sent
		}
		d.mu.Lock()
		d.records = append(d.records, rec)
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (a compiledAlert) matches(ev eventv1.Event) bool {
	if a.Suspend {
		return false
	}
	if a.EventSeverity == eventv1.EventSeverityError && ev.Severity != eventv1.EventSeverityError {
		return false
	}
	if ev.Severity == eventv1.EventSeverityTrace {
		return false // trace events are never forwarded to providers
	}
	source := false
	for _, s := range a.EventSources {
		ns := s.Namespace
		if ns == "" {
			ns = a.Namespace
		}
		if s.Kind == ev.InvolvedObject.Kind && (s.Name == "" || s.Name == "*" || s.Name == ev.InvolvedObject.Name) &&
			(ns == "*" || ns == ev.InvolvedObject.Namespace) {
			source = true
			break
		}
	}
	if !source {
		return false
	}
	if len(a.include) > 0 && !slices.ContainsFunc(a.include, func(re *regexp.Regexp) bool { return re.MatchString(ev.Message) }) {
		return false
	}
	return !slices.ContainsFunc(a.exclude, func(re *regexp.Regexp) bool { return re.MatchString(ev.Message) })
}

// EventKey identifies an event for rate limiting the way notification-controller does: object name,
// namespace, kind, message, and the origin revision, revision and token metadata (prefixed by the
// object's API group) when present, hashed with SHA-256.
func EventKey(ev eventv1.Event) string {
	comps := []string{"event", "name=" + ev.InvolvedObject.Name, "namespace=" + ev.InvolvedObject.Namespace,
		"kind=" + ev.InvolvedObject.Kind, "message=" + ev.Message}
	group := ev.InvolvedObject.APIVersion
	if i := strings.Index(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	for _, k := range []struct{ meta, label string }{
		{eventv1.MetaOriginRevisionKey, "originRevision"}, {eventv1.MetaRevisionKey, "revision"}, {eventv1.MetaTokenKey, "token"},
	} {
		if v, ok := ev.Metadata[group+"/"+k.meta]; ok {
			comps = append(comps, k.label+"="+v)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(comps, "/")))
	return hex.EncodeToString(sum[:])
}

func objectName(ev eventv1.Event) string {
	return fmt.Sprintf("%s/%s.%s", strings.ToLower(ev.InvolvedObject.Kind), ev.InvolvedObject.Name, ev.InvolvedObject.Namespace)
}

func (d *Dispatcher) post(ctx context.Context, p Provider, ev eventv1.Event) error {
	var payload any
	switch p.Type {
	case Slack:
		payload = slackPayload(p, ev)
	case MSTeams:
		u, _ := url.Parse(p.Address)
		if strings.HasSuffix(u.Hostname(), ".webhook.office.com") {
			payload = messageCard(ev)
		} else {
			payload = adaptiveCard(ev)
		}
	default:
		payload = ev
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", p.Type, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Address, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.Type == Generic || p.Type == GenericHMAC {
		req.Header.Set("gotk-component", ev.ReportingController)
	}
	if p.Type == GenericHMAC {
		mac := hmac.New(sha256.New, p.Secret)
		mac.Write(body)
		req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", redact(p.Address), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("post to %s: %s: %s", redact(p.Address), resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// redact drops the path of a webhook address: for Slack and Teams the path is the secret.
func redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "<webhook>"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

func sortedMeta(ev eventv1.Event) []string {
	keys := make([]string, 0, len(ev.Metadata))
	for k := range ev.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func slackPayload(p Provider, ev eventv1.Event) map[string]any {
	color := "good"
	if ev.Severity == eventv1.EventSeverityError {
		color = "danger"
	}
	fields := []map[string]any{}
	for _, k := range sortedMeta(ev) {
		fields = append(fields, map[string]any{"title": k, "value": ev.Metadata[k], "short": false})
	}
	user := p.Username
	if user == "" {
		user = ev.ReportingController
	}
	out := map[string]any{
		"username": user,
		"attachments": []map[string]any{{
			"color": color, "author_name": objectName(ev), "text": ev.Message, "mrkdwn_in": []string{"text"}, "fields": fields,
		}},
	}
	if p.Channel != "" {
		out["channel"] = p.Channel
	}
	return out
}

func messageCard(ev eventv1.Event) map[string]any {
	color := "0076D7"
	if ev.Severity == eventv1.EventSeverityError {
		color = "FF0000"
	}
	facts := []map[string]string{}
	for _, k := range sortedMeta(ev) {
		facts = append(facts, map[string]string{"name": k, "value": ev.Metadata[k]})
	}
	return map[string]any{
		"@type": "MessageCard", "@context": "http://schema.org/extensions", "themeColor": color, "summary": objectName(ev),
		"sections": []map[string]any{{"activityTitle": ev.Message, "activitySubtitle": objectName(ev), "facts": facts}},
	}
}

// adaptiveCard is the Teams Workflows payload: an Adaptive Card 1.4 (the highest Teams renders) with the
// object, the message (red for errors) and the metadata as facts, "summary" first.
func adaptiveCard(ev eventv1.Event) map[string]any {
	msg := map[string]any{"type": "TextBlock", "text": ev.Message, "wrap": true}
	if ev.Severity == eventv1.EventSeverityError {
		msg["color"] = "attention"
	}
	facts := []map[string]string{}
	if s, ok := ev.Metadata["summary"]; ok {
		facts = append(facts, map[string]string{"title": "summary", "value": s})
	}
	for _, k := range sortedMeta(ev) {
		if k != "summary" {
			facts = append(facts, map[string]string{"title": k, "value": ev.Metadata[k]})
		}
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
				"msteams": map[string]string{"width": "Full"},
				"body": []map[string]any{{"type": "Container", "items": []map[string]any{
					{"type": "TextBlock", "text": objectName(ev), "size": "large", "weight": "bolder", "wrap": true},
					msg,
					{"type": "FactSet", "facts": facts},
				}}},
			},
		}},
	}
}
