package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is the service a Sink stands in for.
type Kind string

// The kinds of receiver.
const (
	Slack   Kind = "slack"
	Teams   Kind = "msteams"
	Generic Kind = "generic"
)

// Delivery is one accepted message.
type Delivery struct {
	Kind     Kind
	At       time.Time
	Object   string // the object the alert is about, e.g. "kustomization/apps.flux-system"
	Severity string // "info" or "error" (derived from the card colour for Slack and Teams)
	Message  string
	Fields   map[string]string // metadata facts / fields
	Raw      []byte
	Header   http.Header
}

// Sink is a running receiver.
type Sink struct {
	kind   Kind
	secret []byte // generic-hmac: the shared key; nil accepts unsigned posts
	now    func() time.Time

	mu         sync.Mutex
	deliveries []Delivery
	rejected   []string

	url  string
	srv  *http.Server
	done chan error
}

// Options configure a Sink.
type Options struct {
	// HMACKey, for Generic, requires an X-Signature: sha256=<hex HMAC-SHA256 of the body> header, as
	// Flux's generic-hmac provider sends it.
	HMACKey []byte
	// Now is the clock stamped on deliveries; time.Now by default.
	Now func() time.Time
}

// Start runs a receiver of the given kind on 127.0.0.1 with an OS-assigned port.
func Start(kind Kind, opts Options) (*Sink, error) {
	switch kind {
	case Slack, Teams, Generic:
	default:
		return nil, fmt.Errorf("start alert sink: unknown kind %q (want %s, %s or %s)", kind, Slack, Teams, Generic)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start %s alert sink: %w", kind, err)
	}
	s := &Sink{kind: kind, secret: opts.HMACKey, now: opts.Now, done: make(chan error, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	// Paths shaped like the real webhook URLs, so a Provider address looks like what users paste.
	path := map[Kind]string{
		Slack:   "/services/T0TWIN/B0TWIN/hybridtwin",
		Teams:   "/workflows/hybridtwin/triggers/manual/paths/invoke",
		Generic: "/hooks/hybridtwin",
	}[kind]
	s.url = "http://" + ln.Addr().String() + path
	mux := http.NewServeMux()
	mux.HandleFunc(path, s.serve)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the webhook address to give a notification Provider.
func (s *Sink) URL() string { return s.url }

// Kind is the service this sink stands in for.
func (s *Sink) Kind() Kind { return s.kind }

// Deliveries returns what was accepted, in arrival order.
func (s *Sink) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// Rejected returns why posts were refused (bad shape, bad signature), in arrival order.
func (s *Sink) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Close stops the receiver.
func (s *Sink) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.reject(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var d Delivery
	switch s.kind {
	case Slack:
		d, err = parseSlack(body)
	case Teams:
		d, err = parseTeams(body)
	case Generic:
		if err = s.checkSignature(r, body); err == nil {
			d, err = parseGeneric(body)
		}
	}
	if err != nil {
		// Slack answers "invalid_payload" / "no_text" with 400; Teams and generic receivers 400 too.
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	}
	d.Kind, d.At, d.Raw, d.Header = s.kind, s.now(), body, r.Header.Clone()
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	switch s.kind {
	case Slack:
		_, _ = io.WriteString(w, "ok") // Slack's incoming webhook answers 200 "ok"
	case Teams:
		w.WriteHeader(http.StatusAccepted) // a Workflows webhook answers 202 Accepted
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Sink) reject(w http.ResponseWriter, status int, why string) {
	s.mu.Lock()
	s.rejected = append(s.rejected, why)
	s.mu.Unlock()
	http.Error(w, why, status)
}

func (s *Sink) checkSignature(r *http.Request, body []byte) error {
	if s.secret == nil {
		return nil
	}
	sig := r.Header.Get("X-Signature")
	algo, hexSum, ok := strings.Cut(sig, "=")
	if !ok || algo != "sha256" {
		return fmt.Errorf("missing or malformed X-Signature header %q (want sha256=<hex>)", sig)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("X-Signature is not hex: %w", err)
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Signature does not match the body's HMAC-SHA256")
	}
	return nil
}

func parseSlack(body []byte) (Delivery, error) {
	var p struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color      string `json:"color"`
			AuthorName string `json:"author_name"`
			Text       string `json:"text"`
			Fields     []struct {
				Title string `json:"title"`
				Value string `json:"value"`
			} `json:"fields"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return Delivery{}, fmt.Errorf("invalid_payload: %v", err)
	}
	if p.Text == "" && len(p.Attachments) == 0 {
		return Delivery{}, errors.New("no_text: a Slack message needs text or attachments")
	}
	d := Delivery{Message: p.Text, Fields: map[string]string{}, Severity: "info"}
	if len(p.Attachments) > 0 {
		a := p.Attachments[0]
		d.Object, d.Message = a.AuthorName, a.Text
		if a.Color == "danger" {
			d.Severity = "error"
		}
		for _, f := range a.Fields {
			d.Fields[f.Title] = f.Value
		}
	}
	return d, nil
}

func parseTeams(body []byte) (Delivery, error) {
	var probe struct {
		Type       string `json:"@type"`
		MsgType    string `json:"type"`
		ThemeColor string `json:"themeColor"`
		Summary    string `json:"summary"`
		Sections   []struct {
			ActivityTitle string `json:"activityTitle"`
			Facts         []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"facts"`
		} `json:"sections"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Delivery{}, fmt.Errorf("invalid payload: %v", err)
	}
	d := Delivery{Fields: map[string]string{}, Severity: "info"}
	switch {
	case probe.Type == "MessageCard":
		d.Object = probe.Summary
		if len(probe.Sections) > 0 {
			d.Message = probe.Sections[0].ActivityTitle
			for _, f := range probe.Sections[0].Facts {
				d.Fields[f.Name] = f.Value
			}
		}
		if strings.EqualFold(probe.ThemeColor, "FF0000") {
			d.Severity = "error"
		}
		return d, nil
	case probe.MsgType == "message":
		if len(probe.Attachments) == 0 || probe.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
			return Delivery{}, errors.New("a Teams message needs an attachment of contentType application/vnd.microsoft.card.adaptive")
		}
		var card struct {
			Type    string        `json:"type"`
			Version string        `json:"version"`
			Body    []cardElement `json:"body"`
		}
		if err := json.Unmarshal(probe.Attachments[0].Content, &card); err != nil || card.Type != "AdaptiveCard" || card.Version == "" {
			return Delivery{}, fmt.Errorf("the attachment is not an Adaptive Card (type %q, version %q, err %v)", card.Type, card.Version, err)
		}
		var texts []cardElement
		walkCard(card.Body, func(e cardElement) {
			switch e.Type {
			case "TextBlock":
				texts = append(texts, e)
			case "FactSet":
				for _, f := range e.Facts {
					d.Fields[f.Title] = f.Value
				}
			}
		})
		if len(texts) > 0 {
			d.Object = texts[0].Text
		}
		if len(texts) > 1 {
			d.Message = texts[1].Text
			if texts[1].Color == "attention" {
				d.Severity = "error"
			}
		}
		return d, nil
	}
	return Delivery{}, errors.New(`neither a MessageCard ("@type":"MessageCard") nor an Adaptive Card message ("type":"message")`)
}

type cardElement struct {
	Type  string        `json:"type"`
	Text  string        `json:"text"`
	Color string        `json:"color"`
	Items []cardElement `json:"items"`
	Facts []struct {
		Title string `json:"title"`
		Value string `json:"value"`
	} `json:"facts"`
}

func walkCard(es []cardElement, f func(cardElement)) {
	for _, e := range es {
		f(e)
		walkCard(e.Items, f)
	}
}

func parseGeneric(body []byte) (Delivery, error) {
	var ev struct {
		InvolvedObject struct {
			Kind      string `json:"kind"`
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"involvedObject"`
		Severity            string            `json:"severity"`
		Message             string            `json:"message"`
		Reason              string            `json:"reason"`
		Metadata            map[string]string `json:"metadata"`
		ReportingController string            `json:"reportingController"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return Delivery{}, fmt.Errorf("invalid event JSON: %v", err)
	}
	var missing []string
	for name, v := range map[string]string{"involvedObject.kind": ev.InvolvedObject.Kind, "involvedObject.name": ev.InvolvedObject.Name,
		"severity": ev.Severity, "message": ev.Message, "reason": ev.Reason, "reportingController": ev.ReportingController} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Delivery{}, fmt.Errorf("the event lacks required fields: %s", strings.Join(sortStrings(missing), ", "))
	}
	fields := map[string]string{"reason": ev.Reason}
	for k, v := range ev.Metadata {
		fields[k] = v
	}
	return Delivery{
		Object:   fmt.Sprintf("%s/%s.%s", strings.ToLower(ev.InvolvedObject.Kind), ev.InvolvedObject.Name, ev.InvolvedObject.Namespace),
		Severity: ev.Severity, Message: ev.Message, Fields: fields,
	}, nil
}

func sortStrings(xs []string) []string {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs
}
