package arc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// ProvisioningDelay is how long PUT and DELETE operations stay in progress.
	ProvisioningDelay time.Duration
	// RetryAfterSeconds, when > 0, is sent as Retry-After on long-running operation responses.
	RetryAfterSeconds int
	// TenantID is reported in identities; a fixed fake GUID by default.
	TenantID string
	// Principal is the service principal the token endpoint issues tokens to; by default one with the
	// TenantID, a random client ID and a random secret, new for every server.
	Principal Principal
}

// DefaultOptions returns the options a twin uses.
func DefaultOptions() Options {
	return Options{Now: time.Now, ProvisioningDelay: DefaultProvisioningDelay, TenantID: "72f988bf-0000-4000-8000-00000000beef"}
}

// Server is the fake ARM endpoint. It is an http.Handler; Serve it over TLS (see Listen), because the
// Azure SDK refuses to send a bearer token over plain HTTP.
type Server struct {
	opts Options

	mu          sync.Mutex
	clusters    map[string]*ConnectedCluster // by lower-case ID
	extensions  map[string]*Extension        // by lower-case ID
	fluxConfigs map[string]*fluxConfigState  // by lower-case ID
	assignments map[string]*PolicyAssignment // by lower-case ID
	ops         map[string]*operation        // by lower-case status URL path
	changed     chan struct{}                // closed and replaced on every change
	baseURL     string                       // set by Listen; used in Azure-AsyncOperation URLs
	requests    int
	policyDeps  map[string][]string // assignment ID -> flux configuration IDs it deployed
	key         []byte              // signs the access tokens this server issues
}

type fluxConfigState struct {
	cfg        FluxConfiguration
	clusterID  string
	generation int64
}

type operation struct {
	id, name  string
	doneAt    time.Time
	start     time.Time
	failure   *errorDetail
	onSuccess func() // runs once, under s.mu, when the operation is first seen done
	ran       bool
}

// NewServer returns an empty fake ARM.
func NewServer(opts Options) *Server {
	d := DefaultOptions()
	if opts.Now == nil {
		opts.Now = d.Now
	}
	if opts.TenantID == "" {
		opts.TenantID = d.TenantID
	}
	if opts.Principal.TenantID == "" {
		opts.Principal.TenantID = opts.TenantID
	}
	if opts.Principal.ClientID == "" {
		opts.Principal.ClientID = newID()
	}
	if opts.Principal.ClientSecret == "" {
		opts.Principal.ClientSecret = randomHex(20)
	}
	return &Server{
		opts:        opts,
		clusters:    map[string]*ConnectedCluster{},
		extensions:  map[string]*Extension{},
		fluxConfigs: map[string]*fluxConfigState{},
		assignments: map[string]*PolicyAssignment{},
		ops:         map[string]*operation{},
		policyDeps:  map[string][]string{},
		changed:     make(chan struct{}),
		key:         []byte(randomHex(32)),
	}
}

// Changed returns a channel that is closed at the next change of any resource (a configuration created,
// changed or deleted, a cluster connected...). Agents wait on it instead of polling hard.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Requests is the number of HTTP requests served, for tests and reports.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ServeHTTP routes an ARM request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()

	reqID := newID()
	w.Header().Set("x-ms-request-id", reqID)
	w.Header().Set("x-ms-correlation-request-id", firstNonEmpty(r.Header.Get("x-ms-correlation-request-id"), reqID))
	if id := r.Header.Get("x-ms-client-request-id"); id != "" {
		w.Header().Set("x-ms-client-request-id", id)
	}
	// The identity platform's token endpoint, where clients get the bearer tokens ARM wants.
	if tenant, ok := tokenRoute(r.URL.Path); ok {
		s.serveToken(w, r, tenant)
		return
	}
	// ARM rejects unauthenticated calls before anything else, with 401 and its error body. (ARM also sends
	// a WWW-Authenticate challenge; the fake leaves it out, because the Azure SDK's ARM bearer policy would
	// answer it by fetching a fresh token and retrying, hiding the refusal a test wants to see.)
	if f := s.authenticate(r); f != nil {
		writeError(w, http.StatusUnauthorized, f.code, f.message, "")
		return
	}
	route, ok := parseRoute(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "InvalidResourceType", fmt.Sprintf("The resource type could not be found for the path %q; the Azure fake serves Microsoft.Kubernetes/connectedClusters, Microsoft.KubernetesConfiguration extensions and fluxConfigurations, and Microsoft.Authorization/policyAssignments.", r.URL.Path), "")
		return
	}
	if !s.checkAPIVersion(w, r, route) {
		return
	}
	switch route.kind {
	case routeOperation:
		s.serveOperation(w, r)
	case routeCluster, routeClusterList:
		s.serveClusters(w, r, route)
	case routeExtension, routeExtensionList:
		s.serveExtensions(w, r, route)
	case routeFluxConfig, routeFluxConfigList:
		s.serveFluxConfigs(w, r, route)
	case routePolicyAssignment, routePolicyAssignmentList:
		s.servePolicyAssignments(w, r, route)
	}
}

func (s *Server) checkAPIVersion(w http.ResponseWriter, r *http.Request, rt route) bool {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.", "")
		return false
	}
	supported := apiVersions[rt.provider]
	if slices.Contains(supported, v) {
		return true
	}
	writeError(w, http.StatusBadRequest, "NoRegisteredProviderFound",
		fmt.Sprintf("No registered resource provider found for location 'global' and API version '%s' for type '%s'. The supported api-versions are '%s'.",
			v, rt.typeName, strings.Join(supported, ", ")), "")
	return false
}

// --- routing -----------------------------------------------------------------------------------------

type routeKind int

const (
	routeCluster routeKind = iota
	routeClusterList
	routeExtension
	routeExtensionList
	routeFluxConfig
	routeFluxConfigList
	routePolicyAssignment
	routePolicyAssignmentList
	routeOperation
)

type route struct {
	kind          routeKind
	provider      string // lower-case namespace whose api-versions apply
	typeName      string // for error messages
	subscription  string
	resourceGroup string
	clusterName   string
	name          string // extension, flux configuration or assignment name
	scope         string // policy assignment scope (as given)
	id            string // canonical resource ID of the addressed resource or collection
}

// parseRoute matches ARM paths case-insensitively, as ARM does, and builds canonical IDs with the casing
// ARM returns.
func parseRoute(path string) (route, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	low := make([]string, len(segs))
	for i, s := range segs {
		low[i] = strings.ToLower(s)
	}
	at := func(i int, want string) bool { return i < len(low) && low[i] == want }
	if len(segs) < 2 || !at(0, "subscriptions") {
		return route{}, false
	}
	sub := segs[1]
	// Operation status URLs minted by this server.
	if i := slices.Index(low, "operations"); i > 0 && i == len(low)-2 {
		return route{kind: routeOperation, provider: providerFor(low), typeName: "operations"}, true
	}
	if at(2, "providers") && at(3, providerKubernetes) && at(4, "locations") && at(6, "operationstatuses") && len(low) == 8 {
		return route{kind: routeOperation, provider: providerKubernetes, typeName: "operationStatuses"}, true
	}
	// Subscription-level listings and policy assignments.
	if at(2, "providers") {
		switch {
		case at(3, providerKubernetes) && at(4, "connectedclusters") && len(low) == 5:
			return route{kind: routeClusterList, provider: providerKubernetes, typeName: "Microsoft.Kubernetes/connectedClusters",
				subscription: sub, id: "/subscriptions/" + sub + "/providers/Microsoft.Kubernetes/connectedClusters"}, true
		case at(3, providerAuthorization) && at(4, "policyassignments"):
			return policyRoute("/subscriptions/"+sub, sub, "", segs[5:])
		}
		return route{}, false
	}
	if !at(2, "resourcegroups") || len(segs) < 4 {
		return route{}, false
	}
	rg := segs[3]
	rgID := "/subscriptions/" + sub + "/resourceGroups/" + rg
	if !at(4, "providers") {
		return route{}, false
	}
	if at(5, providerAuthorization) && at(6, "policyassignments") {
		return policyRoute(rgID, sub, rg, segs[7:])
	}
	if !at(5, providerKubernetes) || !at(6, "connectedclusters") {
		return route{}, false
	}
	clusters := rgID + "/providers/Microsoft.Kubernetes/connectedClusters"
	if len(segs) == 7 {
		return route{kind: routeClusterList, provider: providerKubernetes, typeName: "Microsoft.Kubernetes/connectedClusters",
			subscription: sub, resourceGroup: rg, id: clusters}, true
	}
	cluster := segs[7]
	clusterID := clusters + "/" + cluster
	base := route{subscription: sub, resourceGroup: rg, clusterName: cluster}
	if len(segs) == 8 {
		base.kind, base.provider, base.typeName, base.id = routeCluster, providerKubernetes, "Microsoft.Kubernetes/connectedClusters", clusterID
		return base, true
	}
	if !at(8, "providers") || !at(9, providerConfiguration) || len(segs) < 11 {
		return route{}, false
	}
	base.provider = providerConfiguration
	switch low[10] {
	case "extensions":
		base.typeName = "Microsoft.KubernetesConfiguration/extensions"
		coll := clusterID + "/providers/Microsoft.KubernetesConfiguration/extensions"
		if len(segs) == 11 {
			base.kind, base.id = routeExtensionList, coll
			return base, true
		}
		if len(segs) == 12 {
			base.kind, base.name, base.id = routeExtension, segs[11], coll+"/"+segs[11]
			return base, true
		}
	case "fluxconfigurations":
		base.typeName = "Microsoft.KubernetesConfiguration/fluxConfigurations"
		coll := clusterID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations"
		if len(segs) == 11 {
			base.kind, base.id = routeFluxConfigList, coll
			return base, true
		}
		if len(segs) == 12 {
			base.kind, base.name, base.id = routeFluxConfig, segs[11], coll+"/"+segs[11]
			return base, true
		}
	}
	return route{}, false
}

func policyRoute(scope, sub, rg string, rest []string) (route, bool) {
	r := route{provider: providerAuthorization, typeName: "Microsoft.Authorization/policyAssignments",
		subscription: sub, resourceGroup: rg, scope: scope}
	coll := scope + "/providers/Microsoft.Authorization/policyAssignments"
	switch len(rest) {
	case 0:
		r.kind, r.id = routePolicyAssignmentList, coll
		return r, true
	case 1:
		r.kind, r.name, r.id = routePolicyAssignment, rest[0], coll+"/"+rest[0]
		return r, true
	}
	return route{}, false
}

func providerFor(low []string) string {
	for i, s := range low {
		if s == "providers" && i+1 < len(low) {
			switch low[i+1] {
			case providerConfiguration, providerKubernetes, providerAuthorization:
				if low[i+1] == providerKubernetes && slices.Contains(low[i+1:], providerConfiguration) {
					continue
				}
				return low[i+1]
			}
		}
	}
	return providerConfiguration
}

// --- long-running operations ---------------------------------------------------------------------------

// startOperationLocked registers an operation whose status URL is statusPath and that succeeds after the
// provisioning delay, running onSuccess then. It sets the Azure-AsyncOperation (and, for deletes, Location)
// headers as ARM does.
func (s *Server) startOperationLocked(w http.ResponseWriter, statusPath, apiVersion string, withLocation bool, onSuccess func()) {
	now := s.opts.Now()
	id := statusPath
	op := &operation{id: id, name: id[strings.LastIndex(id, "/")+1:], start: now, doneAt: now.Add(s.opts.ProvisioningDelay), onSuccess: onSuccess}
	s.ops[strings.ToLower(statusPath)] = op
	u := s.baseURL + statusPath + "?api-version=" + apiVersion
	w.Header().Set("Azure-AsyncOperation", u)
	if withLocation {
		w.Header().Set("Location", u)
	}
	if s.opts.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(s.opts.RetryAfterSeconds))
	}
}

// settleLocked runs every operation whose time has come, so state moves forward at read time: no
// goroutines, deterministic under an injected clock.
func (s *Server) settleLocked() {
	now := s.opts.Now()
	keys := make([]string, 0, len(s.ops))
	for k := range s.ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op := s.ops[k]
		if !op.ran && !now.Before(op.doneAt) {
			op.ran = true
			if op.onSuccess != nil && op.failure == nil {
				op.onSuccess()
			}
		}
	}
}

func (s *Server) serveOperation(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Operation status resources only support GET.", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	op, ok := s.ops[strings.ToLower(r.URL.Path)]
	if !ok {
		writeError(w, http.StatusNotFound, "OperationNotFound", fmt.Sprintf("The operation %q was not found.", r.URL.Path), "")
		return
	}
	st := operationStatus{ID: op.id, Name: op.name, Status: "Running", StartTime: ptr(op.start)}
	if op.ran {
		st.Status, st.EndTime = "Succeeded", ptr(op.doneAt)
		if op.failure != nil {
			st.Status, st.Error = "Failed", op.failure
		}
	} else if s.opts.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(s.opts.RetryAfterSeconds))
	}
	writeJSON(w, http.StatusOK, st)
}

// --- helpers -------------------------------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // ARM bodies carry "->" and "<" in messages as is
	_ = enc.Encode(v)
}

// writeError writes ARM's error body: {"error":{"code","message","target"}}.
func writeError(w http.ResponseWriter, status int, code, message, target string) {
	w.Header().Set("x-ms-failure-cause", "gateway")
	writeJSON(w, status, errorResponse{Error: errorDetail{Code: code, Message: message, Target: target}})
}

// badRequest is a validation failure with every problem listed in details.
type badRequest struct{ problems []errorDetail }

func (b *badRequest) add(target, format string, args ...any) {
	b.problems = append(b.problems, errorDetail{Code: "InvalidParameter", Target: target, Message: fmt.Sprintf(format, args...)})
}

func (b *badRequest) write(w http.ResponseWriter) bool {
	if len(b.problems) == 0 {
		return false
	}
	msgs := make([]string, len(b.problems))
	for i, p := range b.problems {
		msgs[i] = p.Target + ": " + p.Message
	}
	writeJSON(w, http.StatusBadRequest, errorResponse{Error: errorDetail{
		Code:    "InvalidRequestContent",
		Message: "The request content was invalid: " + strings.Join(msgs, "; "),
		Target:  b.problems[0].Target,
		Details: b.problems,
	}})
	return true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content could not be read: "+err.Error(), "")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		var se *json.UnmarshalTypeError
		target := ""
		if errors.As(err, &se) {
			target = se.Field
		}
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "+err.Error(), target)
		return false
	}
	return true
}

func notFound(w http.ResponseWriter, rt route) {
	writeError(w, http.StatusNotFound, "ResourceNotFound",
		fmt.Sprintf("The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", rt.typeName, firstNonEmpty(rt.name, rt.clusterName), rt.resourceGroup), "")
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

func systemData(existing *SystemData, now time.Time) *SystemData {
	sd := &SystemData{CreatedAt: ptr(now), CreatedBy: "hybridtwin", CreatedByType: "Application"}
	if existing != nil {
		sd.CreatedAt, sd.CreatedBy, sd.CreatedByType = existing.CreatedAt, existing.CreatedBy, existing.CreatedByType
	}
	sd.LastModifiedAt, sd.LastModifiedBy, sd.LastModifiedByType = ptr(now), "hybridtwin", "Application"
	return sd
}
