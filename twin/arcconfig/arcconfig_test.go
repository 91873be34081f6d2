package arcconfig

import (
	"encoding/base64"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

var config = spec.GitOpsConfig{Name: "fleet", Scope: "cluster", Namespace: "flux-system", Repo: "fleet",
	Ref: spec.RepositoryRef{Branch: "main"}, SyncIntervalInSeconds: 120,
	Kustomizations: map[string]spec.Kustomization{
		"infra": {Path: "./infrastructure", Prune: true},
		"apps": {Path: "./apps", DependsOn: []string{"infra"}, Wait: to.Ptr(true), SyncIntervalInSeconds: 60,
			Substitute: map[string]string{"cluster": "dev"}},
	}}

// The Git configuration in the SDK's model carries every field the spec sets, and leaves out what it
// leaves zero (ARM's defaults apply).
func TestGitInTheSDKModel(t *testing.T) {
	fc, err := Git(config, "http://127.0.0.1:3000/platform/fleet.git", "flux-reader", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	p := fc.Properties
	if *p.SourceKind != "GitRepository" || *p.Scope != "cluster" || *p.Namespace != "flux-system" || *p.Suspend {
		t.Errorf("kind %s scope %s namespace %s suspend %t", *p.SourceKind, *p.Scope, *p.Namespace, *p.Suspend)
	}
	g := p.GitRepository
	if *g.URL != "http://127.0.0.1:3000/platform/fleet.git" || *g.HTTPSUser != "flux-reader" || *g.RepositoryRef.Branch != "main" ||
		g.RepositoryRef.Tag != nil || *g.SyncIntervalInSeconds != 120 || g.TimeoutInSeconds != nil {
		t.Errorf("gitRepository = %+v, ref %+v", g, g.RepositoryRef)
	}
	if key := p.ConfigurationProtectedSettings["httpsKey"]; key == nil || *key != base64.StdEncoding.EncodeToString([]byte("s3cret")) {
		t.Errorf("httpsKey = %v", key)
	}
	apps := p.Kustomizations["apps"]
	if *apps.Path != "./apps" || len(apps.DependsOn) != 1 || *apps.DependsOn[0] != "infra" || !*apps.Wait || *apps.SyncIntervalInSeconds != 60 ||
		apps.TimeoutInSeconds != nil || *apps.PostBuild.Substitute["cluster"] != "dev" || *apps.Prune {
		t.Errorf("apps = %+v", apps)
	}
	if infra := p.Kustomizations["infra"]; !*infra.Prune || infra.DependsOn != nil || infra.PostBuild != nil {
		t.Errorf("infra = %+v", infra)
	}
}

// The OCI configuration shares the Kustomizations' mapping; a repository of the twin's registry is read
// insecurely (the registry speaks plain HTTP).
func TestOCISharesTheMapping(t *testing.T) {
	c := config
	c.Repo, c.OCI = "", &spec.OCISource{Repository: "manifests/platform", Tag: "1.0.0"}
	fc := OCI(c, "127.0.0.1:5000")
	want := &arc.OCIRepositoryDefinition{URL: "oci://127.0.0.1:5000/manifests/platform", Insecure: to.Ptr(true),
		RepositoryRef: &arc.OCIRepositoryRefDefinition{Tag: "1.0.0"}, SyncIntervalInSeconds: to.Ptr(int64(120))}
	if d := cmp.Diff(want, fc.Properties.OCIRepository); d != "" {
		t.Errorf("ociRepository (-want +got):\n%s", d)
	}
	if d := cmp.Diff(common(config).Properties.Kustomizations, fc.Properties.Kustomizations); d != "" {
		t.Errorf("kustomizations differ from the common mapping:\n%s", d)
	}
}
