package arc

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// ErrNotFound is wrapped when the agent API names a resource that does not exist.
var ErrNotFound = errors.New("resource not found")

func errNoCluster(id string) error { return fmt.Errorf("connected cluster %s: %w", id, ErrNotFound) }

// gitOpsPolicy describes a built-in DeployIfNotExists definition the fake evaluates: its parameters with
// their defaults and allowed values, as the definition JSON in Azure/azure-policy declares them.
type gitOpsPolicy struct {
	displayName string
	required    []string
	defaults    map[string]any
	allowed     map[string][]string
}

// builtinPolicies are the policy definitions whose effect the fake models. Source: Azure/azure-policy
// built-in-policies/policyDefinitions/Kubernetes/Deploy-GitOps-Flux2-to-Kubernetes-cluster-no-secrets_DINE.json
// (version 1.1.0), "Configure Kubernetes clusters with Flux v2 configuration using public Git repository".
var builtinPolicies = map[string]gitOpsPolicy{
	strings.ToLower(BuiltinGitOpsPolicyDefinitionID): {
		displayName: "Configure Kubernetes clusters with Flux v2 configuration using public Git repository",
		required:    []string{"configurationName", "repositoryUrl"},
		defaults: map[string]any{
			"configurationNamespace":     "default",
			"configurationScope":         "cluster",
			"repositoryTimeout":          float64(600),
			"repositorySyncInterval":     float64(600),
			"repositoryRefBranch":        "",
			"repositoryRefTag":           "",
			"repositoryRefSemver":        "",
			"repositoryRefCommit":        "",
			"kustomizationName":          "kustomization-1",
			"kustomizationPath":          "./",
			"kustomizationTimeout":       float64(600),
			"kustomizationSyncInterval":  float64(600),
			"kustomizationRetryInterval": float64(600),
			"kustomizationPrune":         false,
			"kustomizationForce":         false,
			"effect":                     "DeployIfNotExists",
		},
		allowed: map[string][]string{
			"configurationScope": {"cluster", "namespace"},
			"effect":             {"DeployIfNotExists", "Disabled"},
		},
	},
}

func (s *Server) servePolicyAssignments(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	key := strings.ToLower(rt.id)
	if rt.kind == routePolicyAssignmentList {
		var out []PolicyAssignment
		for k, a := range s.assignments {
			if strings.HasPrefix(k, key+"/") {
				out = append(out, *a)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		writeJSON(w, http.StatusOK, map[string]any{"value": nonNil(out)})
		return
	}
	existing := s.assignments[key]
	switch r.Method {
	case http.MethodGet:
		if existing == nil {
			writeError(w, http.StatusNotFound, "PolicyAssignmentNotFound", fmt.Sprintf("The policy assignment '%s' is not found.", rt.name), "")
			return
		}
		writeJSON(w, http.StatusOK, existing)
	case http.MethodPut:
		var in PolicyAssignment
		if !decodeBody(w, r, &in) {
			return
		}
		def, ok := builtinPolicies[strings.ToLower(in.Properties.PolicyDefinitionID)]
		if !ok {
			writeError(w, http.StatusNotFound, "PolicyDefinitionNotFound",
				fmt.Sprintf("The policy definition '%s' could not be found. The Azure fake models the built-in GitOps definition '%s'.",
					in.Properties.PolicyDefinitionID, BuiltinGitOpsPolicyDefinitionID), "properties.policyDefinitionId")
			return
		}
		var bad badRequest
		params := map[string]any{}
		for k, v := range def.defaults {
			params[k] = v
		}
		for k, v := range in.Properties.Parameters {
			if _, known := def.defaults[k]; !known && !contains(def.required, k) {
				bad.add("properties.parameters."+k, "is not a parameter of %q", def.displayName)
				continue
			}
			params[k] = v.Value
		}
		for _, k := range def.required {
			if s, _ := params[k].(string); s == "" {
				bad.add("properties.parameters."+k, "is required by %q", def.displayName)
			}
		}
		for k, allowed := range def.allowed {
			if v, _ := params[k].(string); !contains(allowed, v) {
				bad.add("properties.parameters."+k, "%q is not allowed; allowed values: %s", v, strings.Join(allowed, ", "))
			}
		}
		// DeployIfNotExists assignments deploy with a managed identity and need a location for it.
		if in.Identity == nil || !strings.EqualFold(in.Identity.Type, "SystemAssigned") && !strings.EqualFold(in.Identity.Type, "UserAssigned") {
			bad.add("identity", "a DeployIfNotExists assignment needs a managed identity: set identity.type to SystemAssigned")
		}
		if in.Location == "" {
			bad.add("location", "is required with a managed identity")
		}
		if bad.write(w) {
			return
		}
		a := in
		a.ID, a.Name, a.Type = rt.id, rt.name, "Microsoft.Authorization/policyAssignments"
		a.Properties.Scope = rt.scope
		if a.Properties.EnforcementMode == "" {
			a.Properties.EnforcementMode = "Default"
		}
		if a.Properties.DisplayName == "" {
			a.Properties.DisplayName = def.displayName
		}
		a.Identity.PrincipalID, a.Identity.TenantID = newID(), s.opts.TenantID
		var prev *SystemData
		status := http.StatusCreated
		if existing != nil {
			prev, status = existing.SystemData, http.StatusOK
		}
		a.SystemData = systemData(prev, s.opts.Now())
		s.assignments[key] = &a
		// The seed guidance: "These policies apply automatically to existing resources and also to resources
		// that are created after the policy assignment" (seeds/000). Existing clusters in scope now:
		keys := make([]string, 0, len(s.clusters))
		for k := range s.clusters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if c := s.clusters[k]; c.Properties.ProvisioningState == "Succeeded" {
				s.applyAssignmentLocked(&a, c)
			}
		}
		s.notifyLocked()
		writeJSON(w, status, a)
	case http.MethodDelete:
		if existing == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Deleting an assignment does not remove what it deployed (as in Azure).
		delete(s.assignments, key)
		s.notifyLocked()
		writeJSON(w, http.StatusOK, existing)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "policyAssignments support GET, PUT and DELETE.", "")
	}
}

// applyPoliciesToClusterLocked evaluates every assignment whose scope covers a newly connected cluster.
func (s *Server) applyPoliciesToClusterLocked(c *ConnectedCluster) {
	keys := make([]string, 0, len(s.assignments))
	for k := range s.assignments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.applyAssignmentLocked(s.assignments[k], c)
	}
}

// applyAssignmentLocked is the DeployIfNotExists effect: if the cluster is in scope and lacks a matching
// fluxConfiguration (the definition's existenceCondition), deploy one from the template.
func (s *Server) applyAssignmentLocked(a *PolicyAssignment, c *ConnectedCluster) {
	scope := strings.ToLower(a.Properties.Scope)
	if !strings.HasPrefix(strings.ToLower(c.ID), scope+"/") {
		return
	}
	for _, ns := range a.Properties.NotScopes {
		if strings.HasPrefix(strings.ToLower(c.ID), strings.ToLower(ns)) {
			return
		}
	}
	def := builtinPolicies[strings.ToLower(a.Properties.PolicyDefinitionID)]
	param := func(k string) any {
		if v, ok := a.Properties.Parameters[k]; ok {
			return v.Value
		}
		return def.defaults[k]
	}
	str := func(k string) string { v, _ := param(k).(string); return v }
	num := func(k string) *int64 {
		switch v := param(k).(type) {
		case float64:
			return ptr(int64(v))
		case int:
			return ptr(int64(v))
		case int64:
			return ptr(v)
		}
		return nil
	}
	boolean := func(k string) *bool { v, _ := param(k).(bool); return ptr(v) }
	if str("effect") == "Disabled" || a.Properties.EnforcementMode == "DoNotEnforce" {
		return
	}
	name := str("configurationName")
	id := c.ID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/" + name
	ref := &RepositoryRefDefinition{Branch: str("repositoryRefBranch"), Tag: str("repositoryRefTag"), Semver: str("repositoryRefSemver"), Commit: str("repositoryRefCommit")}
	want := FluxConfigurationProperties{
		Scope: str("configurationScope"), Namespace: str("configurationNamespace"), SourceKind: DefaultSourceKind, Suspend: ptr(false),
		GitRepository: &GitRepositoryDefinition{URL: str("repositoryUrl"), RepositoryRef: ref,
			TimeoutInSeconds: num("repositoryTimeout"), SyncIntervalInSeconds: num("repositorySyncInterval")},
		Kustomizations: map[string]*KustomizationDefinition{str("kustomizationName"): {
			Path: str("kustomizationPath"), TimeoutInSeconds: num("kustomizationTimeout"), SyncIntervalInSeconds: num("kustomizationSyncInterval"),
			RetryIntervalInSeconds: num("kustomizationRetryInterval"), Prune: boolean("kustomizationPrune"), Force: boolean("kustomizationForce"),
		}},
	}
	// existenceCondition: scope, namespace, url, timeout, interval, one matching ref, provisioningState != Failed.
	if cur := s.fluxConfigs[strings.ToLower(id)]; cur != nil {
		p, g := cur.cfg.Properties, cur.cfg.Properties.GitRepository
		if g != nil && p.Scope == want.Scope && p.Namespace == want.Namespace && g.URL == want.GitRepository.URL &&
			eqInt(g.TimeoutInSeconds, want.GitRepository.TimeoutInSeconds) && eqInt(g.SyncIntervalInSeconds, want.GitRepository.SyncIntervalInSeconds) &&
			g.RepositoryRef != nil && (ref.Branch != "" && g.RepositoryRef.Branch == ref.Branch || ref.Tag != "" && g.RepositoryRef.Tag == ref.Tag ||
			ref.Semver != "" && g.RepositoryRef.Semver == ref.Semver || ref.Commit != "" && g.RepositoryRef.Commit == ref.Commit) &&
			p.ProvisioningState != "Failed" {
			return
		}
	}
	var bad badRequest
	validateFluxConfig(&bad, policyDeployAPIVersion, name, &want)
	if len(bad.problems) > 0 {
		return // a template that does not validate fails its deployment; nothing is created
	}
	st, _ := s.storeFluxConfigLocked(id, name, strings.ToLower(c.ID), want)
	st.cfg.Properties.ProvisioningState = "Succeeded" // deployed by the policy's template deployment
	s.policyDeps[strings.ToLower(a.ID)] = append(s.policyDeps[strings.ToLower(a.ID)], id)
}

// PolicyDeployments lists the fluxConfiguration IDs an assignment has deployed, in order.
func (s *Server) PolicyDeployments(assignmentID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	return append([]string(nil), s.policyDeps[strings.ToLower(assignmentID)]...)
}

func eqInt(a, b *int64) bool { return a != nil && b != nil && *a == *b }

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
