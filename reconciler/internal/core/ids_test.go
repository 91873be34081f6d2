package core

import "testing"

func TestParseObjIDIsTheInverseOfString(t *testing.T) {
	for name, id := range map[string]ObjID{
		"core, namespaced":      {Kind: "ConfigMap", Namespace: "apps", Name: "settings"},
		"group, namespaced":     {Group: "apps", Kind: "Deployment", Namespace: "apps", Name: "web"},
		"cluster-scoped":        {Kind: "Namespace", Name: "apps"},
		"name with colons":      {Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:controller:edge"},
		"flux kind":             {Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization", Namespace: "flux-system", Name: "apps"},
		"dotted and dashed ids": {Group: "networking.k8s.io", Kind: "IngressClass", Name: "edge-v1.2"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseObjID(id.String())
			if err != nil || got != id {
				t.Fatalf("ParseObjID(%q) = %+v, %v; want %+v", id.String(), got, err, id)
			}
		})
	}
	for _, bad := range []string{"", "apps", "apps_web", "apps__ConfigMap", "apps_web_apps_"} {
		if got, err := ParseObjID(bad); err == nil {
			t.Errorf("ParseObjID(%q) = %+v, want an error", bad, got)
		}
	}
}
