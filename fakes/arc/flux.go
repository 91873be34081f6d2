package arc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/internal/depgraph"
)

// Name rules from the built-in GitOps policy's parameter descriptions: "Maximum of 30 lowercase
// alphanumeric characters or hyphens. Must start and end with an alphanumeric character."
var (
	configNameRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	namespaceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
)

func (s *Server) serveFluxConfigs(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	clusterKey, ok := s.parentClusterLocked(w, rt)
	if !ok {
		return
	}
	key := strings.ToLower(rt.id)
	if rt.kind == routeFluxConfigList {
		out := s.fluxConfigsOfLocked(clusterKey)
		for i := range out {
			redactSecrets(&out[i])
		}
		writeList(w, r, out)
		return
	}
	existing := s.fluxConfigs[key]
	switch r.Method {
	case http.MethodGet:
		if existing == nil {
			notFound(w, rt)
			return
		}
		writeJSON(w, http.StatusOK, responseOf(existing.cfg))
	case http.MethodPut:
		var in FluxConfiguration
		if !decodeBody(w, r, &in) {
			return
		}
		s.putFluxConfigLocked(w, r.URL.Query().Get("api-version"), rt.id, rt.name, clusterKey, in.Properties)
	case http.MethodPatch:
		if existing == nil {
			notFound(w, rt)
			return
		}
		var patch struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if !decodeBody(w, r, &patch) {
			return
		}
		merged, err := mergePatch(existing.cfg.Properties, patch.Properties)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The patch could not be applied: "+err.Error(), "properties")
			return
		}
		s.putFluxConfigLocked(w, r.URL.Query().Get("api-version"), rt.id, rt.name, clusterKey, merged)
	case http.MethodDelete:
		if existing == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		existing.cfg.Properties.ProvisioningState = "Deleting"
		existing.generation++
		s.notifyLocked()
		s.startOperationLocked(w, rt.id+"/operations/"+newID(), r.URL.Query().Get("api-version"), true, func() {
			delete(s.fluxConfigs, key)
			s.notifyLocked()
		})
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "fluxConfigurations support GET, PUT, PATCH and DELETE.", "")
	}
}

// putFluxConfigLocked validates, defaults and stores a configuration, answering as the RP does: 201 on
// create, 200 on update, with an Azure-AsyncOperation header; provisioning succeeds after the delay.
func (s *Server) putFluxConfigLocked(w http.ResponseWriter, apiVersion, id, name, clusterKey string, p FluxConfigurationProperties) {
	var bad badRequest
	validateFluxConfig(&bad, apiVersion, name, &p)
	if bad.write(w) {
		return
	}
	st, status := s.storeFluxConfigLocked(id, name, clusterKey, p)
	key := strings.ToLower(id)
	gen := st.generation
	s.startOperationLocked(w, id+"/operations/"+newID(), apiVersion, false, func() {
		if cur := s.fluxConfigs[key]; cur != nil && cur.generation == gen {
			cur.cfg.Properties.ProvisioningState = "Succeeded"
			s.notifyLocked()
		}
	})
	writeJSON(w, status, responseOf(st.cfg))
}

// responseOf is a configuration as ARM answers with it: a copy without its secrets.
func responseOf(c FluxConfiguration) FluxConfiguration {
	out := deepCopy(c)
	redactSecrets(&out)
	return out
}

// storeFluxConfigLocked writes a validated configuration: defaults, read-only fields reset to Pending,
// and the microsoft.flux extension installed on the cluster if it has none.
func (s *Server) storeFluxConfigLocked(id, name, clusterKey string, p FluxConfigurationProperties) (*fluxConfigState, int) {
	key := strings.ToLower(id)
	applyFluxDefaults(&p)
	now := s.opts.Now()
	existing := s.fluxConfigs[key]
	status := http.StatusCreated
	var prevSD *SystemData
	gen := int64(1)
	if existing != nil {
		status, prevSD, gen = http.StatusOK, existing.cfg.SystemData, existing.generation+1
	}
	// Read-only fields come from the agents, never from the request.
	p.Statuses, p.SourceSyncedCommitID, p.SourceUpdatedAt, p.ErrorMessage, p.RepositoryPublicKey = nil, "", nil, "", ""
	p.StatusUpdatedAt = nil
	// A new generation is Pending until the agent reports on it: the last report was about the old one.
	p.ComplianceState = Pending
	p.ProvisioningState = "Creating"
	if existing != nil {
		p.ProvisioningState = "Updating"
	}
	st := &fluxConfigState{
		cfg: FluxConfiguration{ID: id, Name: name, Type: "Microsoft.KubernetesConfiguration/fluxConfigurations",
			Properties: p, SystemData: systemData(prevSD, now)},
		clusterID:  clusterKey,
		generation: gen,
	}
	s.fluxConfigs[key] = st
	s.ensureFluxExtensionLocked(clusterKey)
	s.notifyLocked()
	return st, status
}

func (s *Server) ensureFluxExtensionLocked(clusterKey string) {
	prefix := clusterKey + "/providers/microsoft.kubernetesconfiguration/extensions/"
	for k, e := range s.extensions {
		if strings.HasPrefix(k, prefix) && strings.EqualFold(e.Properties.ExtensionType, FluxExtensionType) {
			return
		}
	}
	c := s.clusters[clusterKey]
	if c == nil {
		return
	}
	e := s.putExtensionLocked(c.ID+"/providers/Microsoft.KubernetesConfiguration/extensions/flux", "flux",
		ExtensionProperties{ExtensionType: FluxExtensionType})
	e.Properties.ProvisioningState = "Succeeded"
}

func validateFluxConfig(bad *badRequest, apiVersion, name string, p *FluxConfigurationProperties) {
	if len(name) > maxConfigurationNameLength || !configNameRE.MatchString(name) {
		bad.add("name", "%q must be at most %d lowercase alphanumeric characters or hyphens, starting and ending with an alphanumeric character", name, maxConfigurationNameLength)
	}
	if p.Scope != "" && p.Scope != "cluster" && p.Scope != "namespace" {
		bad.add("properties.scope", "%q is not a scope: use \"cluster\" or \"namespace\"", p.Scope)
	}
	if p.Namespace != "" && (len(p.Namespace) > maxNamespaceLength || !namespaceNameRE.MatchString(p.Namespace)) {
		bad.add("properties.namespace", "%q must be at most %d lowercase alphanumeric characters, '-' or '.'", p.Namespace, maxNamespaceLength)
	}
	switch p.SourceKind {
	case "", SourceKindGitRepository:
		validateGitSource(bad, p)
	case SourceKindOCIRepository:
		if apiVersion < OCIMinAPIVersion {
			bad.add("properties.sourceKind", "OCIRepository needs api-version %s or later (this request has %s, whose schema has no ociRepository)", OCIMinAPIVersion, apiVersion)
		}
		validateOCISource(bad, p)
	case SourceKindBucket:
		validateBucketSource(bad, p)
	default:
		bad.add("properties.sourceKind", "%q is not modelled by the twin: GitRepository, OCIRepository and Bucket sources are (AzureBlob is not)", p.SourceKind)
	}
	names := make([]string, 0, len(p.Kustomizations))
	for k := range p.Kustomizations {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		kz := p.Kustomizations[k]
		at := "properties.kustomizations." + k
		if kz == nil {
			bad.add(at, "is null: give the kustomization's definition or leave it out")
			continue
		}
		if len(k) > maxKustomizationNameLength || !configNameRE.MatchString(k) {
			bad.add(at, "the name %q must be at most %d lowercase alphanumeric characters or hyphens, starting and ending with an alphanumeric character", k, maxKustomizationNameLength)
		}
		for _, d := range kz.DependsOn {
			switch {
			case d == k:
				bad.add(at+".dependsOn", "a kustomization cannot depend on itself (%q)", d)
			case p.Kustomizations[d] == nil:
				bad.add(at+".dependsOn", "%q is not a kustomization of this configuration (have: %s)", d, strings.Join(names, ", "))
			}
		}
		positive(bad, at+".syncIntervalInSeconds", kz.SyncIntervalInSeconds)
		positive(bad, at+".timeoutInSeconds", kz.TimeoutInSeconds)
		positive(bad, at+".retryIntervalInSeconds", kz.RetryIntervalInSeconds)
		if kz.PostBuild != nil {
			for i, f := range kz.PostBuild.SubstituteFrom {
				if f.Kind != "ConfigMap" && f.Kind != "Secret" {
					bad.add(fmt.Sprintf("%s.postBuild.substituteFrom[%d].kind", at, i), "%q must be ConfigMap or Secret", f.Kind)
				}
				if f.Name == "" {
					bad.add(fmt.Sprintf("%s.postBuild.substituteFrom[%d].name", at, i), "is required")
				}
			}
		}
	}
	if cycle := dependsOnCycle(p.Kustomizations); cycle != nil {
		bad.add("properties.kustomizations", "dependsOn has a cycle: %s", strings.Join(cycle, " -> "))
	}
}

func positive(bad *badRequest, at string, v *int64) {
	if v != nil && *v <= 0 {
		bad.add(at, "must be a positive number of seconds, got %d", *v)
	}
}

// dependsOnCycle returns one dependency cycle (first node repeated at the end), or nil. A kustomization
// depending on itself, or on one that is not defined, is reported on its own (validateFluxConfig), so
// those edges are left out here.
func dependsOnCycle(ks map[string]*KustomizationDefinition) []string {
	names := make([]string, 0, len(ks))
	for k := range ks {
		names = append(names, k)
	}
	return depgraph.Cycle(names, func(n string) []string {
		var deps []string
		if kz := ks[n]; kz != nil {
			for _, d := range kz.DependsOn {
				if ks[d] != nil && d != n {
					deps = append(deps, d)
				}
			}
		}
		return deps
	})
}

func applyFluxDefaults(p *FluxConfigurationProperties) {
	if p.Scope == "" {
		p.Scope = DefaultScope
	}
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	if p.SourceKind == "" {
		p.SourceKind = DefaultSourceKind
	}
	if p.Suspend == nil {
		p.Suspend = ptr(false)
	}
	if g := p.GitRepository; g != nil {
		if g.SyncIntervalInSeconds == nil {
			g.SyncIntervalInSeconds = ptr(DefaultSyncIntervalSeconds)
		}
		if g.TimeoutInSeconds == nil {
			g.TimeoutInSeconds = ptr(DefaultTimeoutSeconds)
		}
	}
	// OCIRepositoryDefinition: timeoutInSeconds and syncIntervalInSeconds "default": 600 (REST reference).
	if o := p.OCIRepository; o != nil {
		if o.SyncIntervalInSeconds == nil {
			o.SyncIntervalInSeconds = ptr(DefaultSyncIntervalSeconds)
		}
		if o.TimeoutInSeconds == nil {
			o.TimeoutInSeconds = ptr(DefaultTimeoutSeconds)
		}
	}
	// BucketDefinition: timeoutInSeconds and syncIntervalInSeconds "default": 600 (REST reference).
	if b := p.Bucket; b != nil {
		if b.SyncIntervalInSeconds == nil {
			b.SyncIntervalInSeconds = ptr(DefaultSyncIntervalSeconds)
		}
		if b.TimeoutInSeconds == nil {
			b.TimeoutInSeconds = ptr(DefaultTimeoutSeconds)
		}
	}
	for name, k := range p.Kustomizations {
		k.Name = name // read-only: "matching the key in the Kustomizations object map"
		if k.Path == "" {
			k.Path = DefaultKustomizationPath
		}
		if k.SyncIntervalInSeconds == nil {
			k.SyncIntervalInSeconds = ptr(DefaultSyncIntervalSeconds)
		}
		if k.TimeoutInSeconds == nil {
			k.TimeoutInSeconds = ptr(DefaultTimeoutSeconds)
		}
		if k.RetryIntervalInSeconds == nil {
			k.RetryIntervalInSeconds = ptr(DefaultRetryIntervalSeconds)
		}
		if k.Prune == nil {
			k.Prune = ptr(DefaultKustomizationPrune)
		}
		if k.Force == nil {
			k.Force = ptr(DefaultKustomizationForce)
		}
		if k.Wait == nil {
			k.Wait = ptr(DefaultKustomizationWait)
		}
		if k.DependsOn == nil {
			k.DependsOn = []string{}
		}
	}
}

// mergePatch applies a FluxConfigurationPatch: top-level properties replace, gitRepository, bucket and
// ociRepository merge field by field (a null field removes it), and in kustomizations a null value deletes
// that kustomization (REST reference of PATCH).
func mergePatch(cur FluxConfigurationProperties, patch map[string]json.RawMessage) (FluxConfigurationProperties, error) {
	raw, err := json.Marshal(cur)
	if err != nil {
		return cur, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return cur, err
	}
	for k, v := range patch {
		switch k {
		case "gitRepository", "ociRepository", "bucket":
			if string(v) == "null" {
				delete(doc, k)
				continue
			}
			merged, err := mergeFields(doc[k], v)
			if err != nil {
				return cur, fmt.Errorf("%s: %w", k, err)
			}
			doc[k] = merged
		case "kustomizations":
			merged, err := mergeFields(doc[k], v)
			if err != nil {
				return cur, fmt.Errorf("%s: %w", k, err)
			}
			doc[k] = merged
		default:
			doc[k] = v
		}
	}
	merged, _ := json.Marshal(doc)
	var out FluxConfigurationProperties
	if err := json.Unmarshal(merged, &out); err != nil {
		return cur, err
	}
	return out, nil
}

// mergeFields merges a patch object into a base object one key deep: a null value removes the key.
func mergeFields(base, patch json.RawMessage) (json.RawMessage, error) {
	var b, p map[string]json.RawMessage
	_ = json.Unmarshal(base, &b)
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	if b == nil {
		b = map[string]json.RawMessage{}
	}
	for f, fv := range p {
		if string(fv) == "null" {
			delete(b, f)
		} else {
			b[f] = fv
		}
	}
	return json.Marshal(b)
}

func (s *Server) fluxConfigsOfLocked(clusterKey string) []FluxConfiguration {
	prefix := clusterKey + "/providers/microsoft.kubernetesconfiguration/fluxconfigurations/"
	var out []FluxConfiguration
	for k, st := range s.fluxConfigs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, deepCopy(st.cfg))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func deepCopy(c FluxConfiguration) FluxConfiguration {
	raw, _ := json.Marshal(c)
	var out FluxConfiguration
	_ = json.Unmarshal(raw, &out)
	return out
}

// --- the agents' side -------------------------------------------------------------------------------------

// FluxConfigurations returns the configurations of a connected cluster (by its ARM ID), sorted by name,
// including ones being deleted (provisioningState "Deleting"), as the cluster's config agent sees them.
func (s *Server) FluxConfigurations(clusterID string) []FluxConfiguration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	return s.fluxConfigsOfLocked(strings.ToLower(clusterID))
}

// ProtectedSettings returns a configuration's configurationProtectedSettings, which ARM never returns
// but the in-cluster agent receives (to create the Git credentials Secret).
func (s *Server) ProtectedSettings(configID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.fluxConfigs[strings.ToLower(configID)]
	if st == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range st.cfg.Properties.ConfigurationProtectedSettings {
		out[k] = v
	}
	return out
}

// ComplianceReport is what the agent reports about one configuration.
type ComplianceReport struct {
	State           string // Compliant, Non-Compliant, Pending, Suspended, Unknown
	Message         string // errorMessage: the reconciler's message when not compliant
	SyncedCommit    string // sourceSyncedCommitId, e.g. "main@sha1:0123..."
	SourceUpdatedAt time.Time
	Statuses        []ObjectStatus
}

// ReportCompliance writes the agent's report into the configuration's read-only fields.
func (s *Server) ReportCompliance(configID string, rep ComplianceReport) error {
	switch rep.State {
	case Compliant, NonCompliant, Pending, Suspended, Unknown:
	default:
		return fmt.Errorf("report compliance of %s: %q is not a compliance state (want %s, %s, %s, %s or %s)",
			configID, rep.State, Compliant, NonCompliant, Pending, Suspended, Unknown)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.fluxConfigs[strings.ToLower(configID)]
	if st == nil {
		return fmt.Errorf("report compliance of %s: %w", configID, ErrNotFound)
	}
	p := &st.cfg.Properties
	p.ComplianceState, p.ErrorMessage, p.SourceSyncedCommitID = rep.State, rep.Message, rep.SyncedCommit
	if !rep.SourceUpdatedAt.IsZero() {
		p.SourceUpdatedAt = ptr(rep.SourceUpdatedAt.UTC())
	}
	p.StatusUpdatedAt = ptr(s.opts.Now().UTC())
	p.Statuses = append([]ObjectStatus(nil), rep.Statuses...)
	s.notifyLocked()
	return nil
}
