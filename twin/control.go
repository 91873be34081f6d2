package twin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The control API: HTTP/JSON on a unix socket in the twin's state directory (only the user who owns the
// state directory can reach it: the directory is 0700). `hybridtwin status`, `down` and `host` use it.
//
//	GET  /v1/status                     -> Status
//	POST /v1/hosts/{name}/{fail|drain|repair} -> []BridgeRecord
//	POST /v1/clusters                   body addRequest -> NDJSON: {"step"}... then {"report"} or {"error"}
//	POST /v1/clusters/{name}/{delete|recreate} -> ClusterReport
//	POST /v1/clusters/{name}/pools/{pool}/scale?count=N -> ClusterReport
//	POST /v1/down?keep=true|false       -> {} once everything is stopped
const controlHost = "hybridtwin"

// ControlServer serves a twin's control API.
type ControlServer struct {
	ln  net.Listener
	srv *http.Server
}

// ServeControl serves the control API of t on the socket in its state directory until Close.
func ServeControl(t *Twin) (*ControlServer, error) {
	path := SocketPath(t.StateDir())
	_ = os.Remove(path) // prepareState made sure no twin answers there
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("serve the control socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), t.e.Profile().ControlTimeout)
		defer cancel()
		st, err := t.Status(ctx)
		reply(w, st, err)
	})
	mux.HandleFunc("POST /v1/hosts/{name}/{op}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), t.e.Profile().ControlTimeout)
		defer cancel()
		recs, err := t.Host(ctx, HostOp(r.PathValue("op")), r.PathValue("name"))
		reply(w, recs, err)
	})
	// Cluster operations are bound to the request: a client that goes away (Ctrl-C) stops an add or a
	// scale, which then undoes what it started; a removal, once begun, runs to the end.
	mux.HandleFunc("POST /v1/clusters/{name}/{op}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), t.e.Profile().LifecycleTimeout)
		defer cancel()
		var rep *ClusterReport
		var err error
		switch op := r.PathValue("op"); op {
		case "delete":
			rep, err = t.RemoveCluster(ctx, r.PathValue("name"))
		case "recreate":
			rep, err = t.RecreateCluster(ctx, r.PathValue("name"))
		default:
			err = fmt.Errorf("cluster operation %q: %w; use delete, recreate or pools/POOL/scale", op, ErrRefused)
		}
		reply(w, rep, err)
	})
	// Adding a cluster streams its stages (one JSON object a line) so the CLI shows progress on the long
	// ones; the last line is the report or the error. A bad cluster file is refused before anything starts.
	mux.HandleFunc("POST /v1/clusters", func(w http.ResponseWriter, r *http.Request) {
		var req addRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxClusterFile)).Decode(&req); err != nil {
			reply(w, nil, fmt.Errorf("add cluster: %w: the request is not a cluster file: %v", ErrRefused, err))
			return
		}
		f, err := ParseClusterFragment(req.File, []byte(req.YAML))
		if err != nil {
			reply(w, nil, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), t.e.Profile().LifecycleTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		enc := json.NewEncoder(w)
		send := func(m addMessage) {
			_ = enc.Encode(m)
			if fl != nil {
				fl.Flush()
			}
		}
		rep, err := t.AddClusterFile(ctx, f, func(s LifecycleStep) { send(addMessage{Step: &s}) })
		if err != nil {
			eb := errBody(err)
			send(addMessage{Error: &eb})
			return
		}
		send(addMessage{Report: rep})
	})
	mux.HandleFunc("POST /v1/clusters/{name}/pools/{pool}/scale", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), t.e.Profile().LifecycleTimeout)
		defer cancel()
		count, err := strconv.Atoi(r.URL.Query().Get("count"))
		if err != nil {
			reply(w, nil, fmt.Errorf("scale node pool %s of cluster %s: %w: count %q is not a number", r.PathValue("pool"), r.PathValue("name"), ErrRefused, r.URL.Query().Get("count")))
			return
		}
		rep, err := t.ScaleNodePool(ctx, r.PathValue("name"), r.PathValue("pool"), count)
		reply(w, rep, err)
	})
	mux.HandleFunc("POST /v1/down", func(w http.ResponseWriter, r *http.Request) {
		// Not bound to the request: a client that goes away must not leave a half-stopped twin.
		err := t.Down(context.WithoutCancel(r.Context()), r.URL.Query().Get("keep") == "true")
		reply(w, struct{}{}, err)
	})
	cs := &ControlServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: t.e.Profile().ControlTimeout}}
	go func() { _ = cs.srv.Serve(ln) }()
	return cs, nil
}

// Close stops serving; it waits for requests in flight until ctx ends.
func (c *ControlServer) Close(ctx context.Context) error {
	return c.srv.Shutdown(ctx)
}

// maxClusterFile bounds a cluster file sent to the control socket (a file of a few pools and
// configurations is a few KiB; 1 MiB is far beyond any).
const maxClusterFile = 1 << 20

// addRequest is a cluster file sent to the twin: its name (for errors) and its content.
type addRequest struct {
	File string `json:"file"`
	YAML string `json:"yaml"`
}

// addMessage is one line of the add stream: a stage done, or at the end the report or the error.
type addMessage struct {
	Step   *LifecycleStep `json:"step,omitempty"`
	Report *ClusterReport `json:"report,omitempty"`
	Error  *errorBody     `json:"error,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
	Host  bool   `json:"host,omitempty"` // the error wraps ErrHost
	// Refused: the error wraps ErrRefused (nothing was changed); Capacity carries the hardware model's
	// reasons when it was the model that said no. Lifecycle: an operation failed part-way (ErrLifecycle).
	Refused   bool           `json:"refused,omitempty"`
	Capacity  *CapacityError `json:"capacity,omitempty"`
	Lifecycle bool           `json:"lifecycle,omitempty"`
	// File: a cluster file's problems (a *ClusterFileError).
	File *ClusterFileError `json:"file,omitempty"`
}

func errBody(err error) errorBody {
	body := errorBody{Error: err.Error(), Host: errors.Is(err, ErrHost), Refused: errors.Is(err, ErrRefused), Lifecycle: errors.Is(err, ErrLifecycle)}
	var ce *CapacityError
	if errors.As(err, &ce) {
		body.Capacity = ce
	}
	var fe *ClusterFileError
	if errors.As(err, &fe) {
		body.File = fe
	}
	return body
}

// err turns a reported error back into one errors.Is and errors.As work on as in-process.
func (eb errorBody) err() error {
	switch {
	case eb.Host:
		return &remoteHostError{msg: eb.Error}
	case eb.Capacity != nil:
		return eb.Capacity
	case eb.File != nil:
		return eb.File
	case eb.Refused:
		return &remoteError{msg: eb.Error, is: ErrRefused}
	case eb.Lifecycle:
		return &remoteError{msg: eb.Error, is: ErrLifecycle}
	}
	return errors.New(eb.Error)
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrHost) || errors.Is(err, ErrRefused) {
			code = http.StatusConflict
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(errBody(err))
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// Remote is a client of a running twin's control socket.
type Remote struct {
	stateDir string
	http     *http.Client
}

// Dial connects to the twin whose state directory is stateDir. It wraps ErrNotRunning when nothing
// answers there.
func Dial(stateDir string) (*Remote, error) {
	path := SocketPath(stateDir)
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w in %s (control socket %s: %v)", ErrNotRunning, stateDir, path, err)
	}
	conn.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Remote{stateDir: stateDir, http: &http.Client{Transport: tr}}, nil
}

// Close releases the client's connections.
func (r *Remote) Close() { r.http.CloseIdleConnections() }

func (r *Remote) do(ctx context.Context, method, path string, in io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+controlHost+path, in)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("twin control %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			return nil, eb.err()
		}
		return nil, fmt.Errorf("twin control %s %s: %s: %s", method, path, resp.Status, body)
	}
	return resp, nil
}

func (r *Remote) call(ctx context.Context, method, path string, out any) error {
	resp, err := r.do(ctx, method, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

// AddCluster onboards the cluster of a cluster file on the running twin (see Twin.AddClusterFile): file
// names it in errors, data is its content. onStep, if set, hears each stage as the twin does it. A bad
// file is a *ClusterFileError, a refusal by the hardware model a *CapacityError; nothing was started
// then. If ctx ends, the twin undoes what it started.
func (r *Remote) AddCluster(ctx context.Context, file string, data []byte, onStep func(LifecycleStep)) (*ClusterReport, error) {
	body, err := json.Marshal(addRequest{File: file, YAML: string(data)})
	if err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodPost, "/v1/clusters", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m addMessage
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("add cluster from %s: the twin's answer ended early: %w", file, err)
		}
		switch {
		case m.Error != nil:
			return nil, m.Error.err()
		case m.Report != nil:
			return m.Report, nil
		case m.Step != nil && onStep != nil:
			onStep(*m.Step)
		}
	}
}

// Status is the running twin's Status.
func (r *Remote) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := r.call(ctx, http.MethodGet, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Host runs a host operation on the running twin.
func (r *Remote) Host(ctx context.Context, op HostOp, host string) ([]BridgeRecord, error) {
	var recs []BridgeRecord
	err := r.call(ctx, http.MethodPost, "/v1/hosts/"+host+"/"+string(op), &recs)
	return recs, err
}

// RemoveCluster removes a workload cluster of the running twin (see Twin.RemoveCluster).
func (r *Remote) RemoveCluster(ctx context.Context, name string) (*ClusterReport, error) {
	return r.clusterOp(ctx, "/v1/clusters/"+url.PathEscape(name)+"/delete")
}

// RecreateCluster brings a removed cluster of the spec back (see Twin.RecreateCluster).
func (r *Remote) RecreateCluster(ctx context.Context, name string) (*ClusterReport, error) {
	return r.clusterOp(ctx, "/v1/clusters/"+url.PathEscape(name)+"/recreate")
}

// ScaleNodePool sets a node pool's VM count (see Twin.ScaleNodePool). A refusal by the hardware model is
// a *CapacityError.
func (r *Remote) ScaleNodePool(ctx context.Context, clusterName, pool string, count int) (*ClusterReport, error) {
	return r.clusterOp(ctx, fmt.Sprintf("/v1/clusters/%s/pools/%s/scale?count=%d", url.PathEscape(clusterName), url.PathEscape(pool), count))
}

func (r *Remote) clusterOp(ctx context.Context, path string) (*ClusterReport, error) {
	var rep ClusterReport
	if err := r.call(ctx, http.MethodPost, path, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// Down stops the running twin and, unless keep, removes its state. It returns once everything stopped.
func (r *Remote) Down(ctx context.Context, keep bool) error {
	var out struct{}
	return r.call(ctx, http.MethodPost, fmt.Sprintf("/v1/down?keep=%t", keep), &out)
}

// remoteHostError is a refused host operation as the control socket reported it; errors.Is(err, ErrHost).
type remoteHostError struct{ msg string }

func (e *remoteHostError) Error() string { return e.msg }
func (e *remoteHostError) Unwrap() error { return ErrHost }

// remoteError is an error the control socket reported, keeping the sentinel it wrapped for errors.Is.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }
