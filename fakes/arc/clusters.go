package arc

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

func (s *Server) serveClusters(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	key := strings.ToLower(rt.id)
	if rt.kind == routeClusterList {
		prefix := strings.ToLower(strings.TrimSuffix(rt.id, "/providers/Microsoft.Kubernetes/connectedClusters"))
		writeList(w, r, listUnder(s.clusters, prefix, func(c ConnectedCluster) string { return c.ID }))
		return
	}
	existing := s.clusters[key]
	switch r.Method {
	case http.MethodGet:
		writeFound(w, rt, existing)
	case http.MethodPut:
		var in ConnectedCluster
		if !decodeBody(w, r, &in) {
			return
		}
		var bad badRequest
		if in.Location == "" {
			bad.add("location", "is required: the Azure region the cluster's ARM resource lives in, e.g. \"westeurope\"")
		}
		if in.Identity == nil || !strings.EqualFold(in.Identity.Type, "SystemAssigned") && !strings.EqualFold(in.Identity.Type, "None") {
			bad.add("identity.type", "is required and must be SystemAssigned or None")
		}
		if !validName(rt.clusterName, 63) {
			bad.add("name", "%q must be 1-63 characters of letters, digits, '-' and '_'", rt.clusterName)
		}
		if bad.write(w) {
			return
		}
		now := s.opts.Now()
		c := in
		c.ID, c.Name, c.Type = rt.id, rt.clusterName, "Microsoft.Kubernetes/connectedClusters"
		c.Identity.PrincipalID, c.Identity.TenantID = newID(), s.opts.TenantID
		if strings.EqualFold(c.Identity.Type, "None") {
			c.Identity.PrincipalID, c.Identity.TenantID = "", ""
		}
		var prevSD *SystemData
		status := http.StatusCreated
		if existing != nil {
			prevSD, status = existing.SystemData, http.StatusOK
			c.Properties.ConnectivityStatus = existing.Properties.ConnectivityStatus
			c.Properties.LastConnectivityTime = existing.Properties.LastConnectivityTime
		}
		c.SystemData = systemData(prevSD, now)
		// Accepted -> Succeeded (armhybridkubernetes ProvisioningState); the agents connect afterwards.
		c.Properties.ProvisioningState = "Accepted"
		if c.Properties.ConnectivityStatus == "" {
			c.Properties.ConnectivityStatus = "Connecting"
		}
		s.clusters[key] = &c
		s.notifyLocked()
		statusPath := "/subscriptions/" + rt.subscription + "/providers/Microsoft.Kubernetes/locations/" + strings.ToLower(c.Location) + "/operationStatuses/" + newID()
		s.startOperationLocked(w, statusPath, r.URL.Query().Get("api-version"), false, func() {
			if cur := s.clusters[key]; cur != nil {
				cur.Properties.ProvisioningState = "Succeeded"
				s.applyPoliciesToClusterLocked(cur)
				s.notifyLocked()
			}
		})
		writeJSON(w, status, c)
	case http.MethodPatch:
		if existing == nil {
			notFound(w, rt)
			return
		}
		var patch struct {
			Tags map[string]string `json:"tags"`
		}
		if !decodeBody(w, r, &patch) {
			return
		}
		existing.Tags = patch.Tags
		existing.SystemData = systemData(existing.SystemData, s.opts.Now())
		s.notifyLocked()
		writeJSON(w, http.StatusOK, existing)
	case http.MethodDelete:
		if existing == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		existing.Properties.ProvisioningState = "Deleting"
		s.notifyLocked()
		statusPath := "/subscriptions/" + rt.subscription + "/providers/Microsoft.Kubernetes/locations/" + strings.ToLower(existing.Location) + "/operationStatuses/" + newID()
		s.startOperationLocked(w, statusPath, r.URL.Query().Get("api-version"), true, func() {
			// Deleting the cluster deletes its nested extension and configuration resources.
			delete(s.clusters, key)
			for k := range s.extensions {
				if strings.HasPrefix(k, key+"/") {
					delete(s.extensions, k)
				}
			}
			for k := range s.fluxConfigs {
				if strings.HasPrefix(k, key+"/") {
					delete(s.fluxConfigs, k)
				}
			}
			s.notifyLocked()
		})
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "connectedClusters support GET, PUT, PATCH and DELETE.", "")
	}
}

func (s *Server) serveExtensions(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	if _, ok := s.parentClusterLocked(w, rt); !ok {
		return
	}
	key := strings.ToLower(rt.id)
	if rt.kind == routeExtensionList {
		writeList(w, r, listUnder(s.extensions, key, func(e Extension) string { return e.ID }))
		return
	}
	existing := s.extensions[key]
	switch r.Method {
	case http.MethodGet:
		writeFound(w, rt, existing)
	case http.MethodPut:
		var in Extension
		if !decodeBody(w, r, &in) {
			return
		}
		var bad badRequest
		if in.Properties.ExtensionType == "" {
			bad.add("properties.extensionType", "is required, e.g. %q", FluxExtensionType)
		}
		if bad.write(w) {
			return
		}
		e := s.putExtensionLocked(rt.id, rt.name, in.Properties)
		status := http.StatusCreated
		if existing != nil {
			status = http.StatusOK
		}
		s.startOperationLocked(w, rt.id+"/operations/"+newID(), r.URL.Query().Get("api-version"), false, func() {
			if cur := s.extensions[key]; cur != nil {
				cur.Properties.ProvisioningState = "Succeeded"
				s.notifyLocked()
			}
		})
		writeJSON(w, status, e)
	case http.MethodDelete:
		if existing == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		existing.Properties.ProvisioningState = "Deleting"
		s.notifyLocked()
		s.startOperationLocked(w, rt.id+"/operations/"+newID(), r.URL.Query().Get("api-version"), true, func() {
			delete(s.extensions, key)
			s.notifyLocked()
		})
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "extensions support GET, PUT and DELETE in the fake.", "")
	}
}

// putExtensionLocked stores an extension in Creating state, with microsoft.flux's defaults.
func (s *Server) putExtensionLocked(id, name string, p ExtensionProperties) *Extension {
	key := strings.ToLower(id)
	var prev *SystemData
	if old := s.extensions[key]; old != nil {
		prev = old.SystemData
	}
	if p.ReleaseTrain == "" {
		p.ReleaseTrain = "Stable" // az k8s-extension create --release-train default
	}
	if p.AutoUpgradeMinorVersion == nil {
		p.AutoUpgradeMinorVersion = ptr(true) // az k8s-extension create --auto-upgrade-minor-version default
	}
	if strings.EqualFold(p.ExtensionType, FluxExtensionType) && p.Scope == nil {
		p.Scope = &ExtensionScope{}
		p.Scope.Cluster = &struct {
			ReleaseNamespace string `json:"releaseNamespace,omitempty"`
		}{ReleaseNamespace: FluxExtensionReleaseNamespace}
	}
	p.ProvisioningState = "Creating"
	e := &Extension{ID: id, Name: name, Type: "Microsoft.KubernetesConfiguration/extensions", Properties: p,
		SystemData: systemData(prev, s.opts.Now())}
	s.extensions[key] = e
	s.notifyLocked()
	return e
}

func clusterIDOf(rt route) string {
	return "/subscriptions/" + rt.subscription + "/resourceGroups/" + rt.resourceGroup + "/providers/Microsoft.Kubernetes/connectedClusters/" + rt.clusterName
}

func validName(n string, max int) bool {
	if n == "" || len(n) > max {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// ConnectedClusters returns every connected cluster, sorted by ID.
func (s *Server) ConnectedClusters() []ConnectedCluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	out := make([]ConnectedCluster, 0, len(s.clusters))
	for _, c := range s.clusters {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetConnectivity records what the cluster's Arc agents report: connectivity, Kubernetes version and size.
func (s *Server) SetConnectivity(clusterID, status, kubernetesVersion string, nodes, cores int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[strings.ToLower(clusterID)]
	if c == nil {
		return errNoCluster(clusterID)
	}
	c.Properties.ConnectivityStatus = status
	c.Properties.KubernetesVersion = kubernetesVersion
	c.Properties.TotalNodeCount, c.Properties.TotalCoreCount = ptr(nodes), ptr(cores)
	c.Properties.LastConnectivityTime = ptr(s.opts.Now().UTC().Truncate(time.Second))
	s.notifyLocked()
	return nil
}

// listUnder returns copies of the resources whose lower-case ID key lies under prefix (a collection's
// lower-case ID), sorted by ID: the body of an ARM list call.
func listUnder[T any](m map[string]*T, prefix string, id func(T) string) []T {
	var out []T
	for k, v := range m {
		if strings.HasPrefix(k, prefix+"/") {
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return id(out[i]) < id(out[j]) })
	return out
}

// parentClusterLocked returns the lower-case ID of the connected cluster a nested resource lives under,
// or answers ARM's ParentResourceNotFound and returns false.
func (s *Server) parentClusterLocked(w http.ResponseWriter, rt route) (string, bool) {
	clusterKey := strings.ToLower(clusterIDOf(rt))
	if s.clusters[clusterKey] == nil {
		writeError(w, http.StatusNotFound, "ParentResourceNotFound",
			"Can not perform requested operation on nested resource. Parent resource '"+rt.clusterName+"' not found.", "")
		return "", false
	}
	return clusterKey, true
}

// writeList answers a GET on a collection with ARM's {"value": [...]}; other methods are refused.
func writeList[T any](w http.ResponseWriter, r *http.Request, items []T) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The collection only supports GET.", "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": nonNil(items)})
}

// writeFound answers a GET on one resource: the resource, or ARM's ResourceNotFound.
func writeFound[T any](w http.ResponseWriter, rt route, v *T) {
	if v == nil {
		notFound(w, rt)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
