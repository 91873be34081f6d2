package arc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

// ociEnv is a fake whose operations finish at the next request (delay 0 under a fixed clock), so the
// SDK's poller in arcsdk.PutFluxConfiguration completes without the test stepping time.
func ociEnv(t *testing.T) (*arc.Server, *arc.Endpoint, string) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	srv := arc.NewServer(arc.Options{Now: clk.Now})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	cc, err := arcsdk.ConnectCluster(context.Background(), ep, sub, "rg-hci", "workload-oci", "westeurope", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return srv, ep, *cc.ID
}

func ociConfig(url string) arc.FluxConfiguration {
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		SourceKind: arc.SourceKindOCIRepository,
		Namespace:  "apps",
		OCIRepository: &arc.OCIRepositoryDefinition{
			URL:           url,
			RepositoryRef: &arc.OCIRepositoryRefDefinition{Tag: "1.0.0"},
			LayerSelector: &arc.LayerSelectorDefinition{MediaType: "application/vnd.cncf.flux.content.v1.tar+gzip", Operation: "extract"},
			Insecure:      ptrTo(true),
			TLSConfig:     &arc.TLSConfigDefinition{CACertificate: "c2VjcmV0LWNh"},
		},
		Kustomizations: map[string]*arc.KustomizationDefinition{"apps": {Path: "./apps"}},
	}}
}

func ptrTo[T any](v T) *T { return &v }

// The OCIRepository source in the 2025-04-01 REST shape: accepted through the SDK's pipeline and poller,
// defaulted, read back without its x-ms-secret fields, and listed.
func TestOCIFluxConfigurationWireShape(t *testing.T) {
	srv, ep, clusterID := ociEnv(t)
	ctx := context.Background()
	id := arcsdk.FluxConfigurationID(clusterID, "oci-apps")

	got, err := arcsdk.PutFluxConfiguration(ctx, ep, id, ociConfig("oci://registry.example/manifests/apps"), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if p.ProvisioningState != "Succeeded" || p.SourceKind != "OCIRepository" || p.ComplianceState != arc.Pending || p.GitRepository != nil {
		t.Fatalf("after PUT: provisioningState %q sourceKind %q complianceState %q gitRepository %v", p.ProvisioningState, p.SourceKind, p.ComplianceState, p.GitRepository)
	}
	o := p.OCIRepository
	if o == nil || o.URL != "oci://registry.example/manifests/apps" || o.RepositoryRef.Tag != "1.0.0" || o.LayerSelector.Operation != "extract" || !*o.Insecure {
		t.Fatalf("ociRepository read back as %+v", o)
	}
	if *o.SyncIntervalInSeconds != 600 || *o.TimeoutInSeconds != 600 {
		t.Errorf("ociRepository defaults: syncIntervalInSeconds %d timeoutInSeconds %d, want 600 and 600 (REST reference defaults)", *o.SyncIntervalInSeconds, *o.TimeoutInSeconds)
	}
	if o.TLSConfig == nil || *o.TLSConfig != (arc.TLSConfigDefinition{}) {
		t.Errorf("tlsConfig is x-ms-secret and must not be returned; got %+v", o.TLSConfig)
	}

	// The raw JSON of a GET has the REST field names.
	status, body := doJSON(t, &env{ep: ep}, http.MethodGet, ep.URL+id+"?api-version=2025-04-01", "")
	if status != http.StatusOK {
		t.Fatalf("GET: %d %s", status, body)
	}
	var raw struct {
		Properties struct {
			SourceKind    string                     `json:"sourceKind"`
			OCIRepository map[string]json.RawMessage `json:"ociRepository"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"url", "repositoryRef", "layerSelector", "insecure", "syncIntervalInSeconds", "timeoutInSeconds"} {
		if _, ok := raw.Properties.OCIRepository[f]; !ok {
			t.Errorf("GET body has no properties.ociRepository.%s: %s", f, body)
		}
	}
	if strings.Contains(body, "c2VjcmV0LWNh") {
		t.Errorf("GET returned the tlsConfig secret: %s", body)
	}
	// The agent side still gets the secret material it needs.
	cfgs := srv.FluxConfigurations(clusterID)
	if len(cfgs) != 1 || cfgs[0].Properties.OCIRepository.TLSConfig.CACertificate != "c2VjcmV0LWNh" {
		t.Errorf("agent view: %+v", cfgs)
	}

	// PATCH switches the source to Git: ociRepository null removes it.
	status, body = doJSON(t, &env{ep: ep}, http.MethodPatch, ep.URL+id+"?api-version=2025-04-01",
		`{"properties":{"sourceKind":"GitRepository","ociRepository":null,"gitRepository":{"url":"https://git.example/apps","repositoryRef":{"branch":"main"}}}}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH to Git: %d %s", status, body)
	}
	back, err := arcsdk.GetFluxConfiguration(ctx, ep, id)
	if err != nil {
		t.Fatal(err)
	}
	if back.Properties.OCIRepository != nil || back.Properties.GitRepository == nil || back.Properties.SourceKind != "GitRepository" {
		t.Errorf("after PATCH: %+v", back.Properties)
	}
}

// Bad OCI configurations get ARM's 400 InvalidRequestContent, each problem naming its field; nothing is stored.
func TestBadOCIFluxConfigurationsNameTheField(t *testing.T) {
	srv, ep, clusterID := ociEnv(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		mutate func(*arc.FluxConfiguration)
		field  string
		says   string
	}{
		{"no ociRepository", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository = nil }, "properties.ociRepository", "is required for sourceKind OCIRepository"},
		{"no url", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository.URL = "" }, "properties.ociRepository.url", "is required"},
		{"not oci://", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository.URL = "https://registry.example/apps" }, "properties.ociRepository.url", "must start with oci://"},
		{"tag in url", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository.URL = "oci://registry.example/apps:1.0.0" }, "properties.ociRepository.url", "repositoryRef.tag"},
		{"tag and digest", func(c *arc.FluxConfiguration) {
			c.Properties.OCIRepository.RepositoryRef.Digest = "sha256:" + strings.Repeat("ab", 32)
		}, "properties.ociRepository.repositoryRef", "tag and digest: they conflict"},
		{"bad digest", func(c *arc.FluxConfiguration) {
			c.Properties.OCIRepository.RepositoryRef = &arc.OCIRepositoryRefDefinition{Digest: "sha256:nothex"}
		}, "properties.ociRepository.repositoryRef.digest", "64 lower-case hex"},
		{"bad layer operation", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository.LayerSelector.Operation = "unpack" }, "properties.ociRepository.layerSelector.operation", `\"unpack\" must be \"extract\" or \"copy\"`}, // as JSON-escaped in the body
		{"zero interval", func(c *arc.FluxConfiguration) { c.Properties.OCIRepository.SyncIntervalInSeconds = ptrTo[int64](0) }, "properties.ociRepository.syncIntervalInSeconds", "positive"},
		{"git and oci", func(c *arc.FluxConfiguration) {
			c.Properties.GitRepository = &arc.GitRepositoryDefinition{URL: "https://git.example/apps"}
		}, "properties.gitRepository", "sourceKind is OCIRepository"},
		{"oci under git kind", func(c *arc.FluxConfiguration) { c.Properties.SourceKind = "GitRepository" }, "properties.ociRepository", "sourceKind is GitRepository"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ociConfig("oci://registry.example/manifests/apps")
			c.mutate(&cfg)
			_, err := arcsdk.PutFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(clusterID, "bad"), cfg, time.Millisecond)
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "InvalidRequestContent" {
				t.Fatalf("err = %v, want a 400 InvalidRequestContent", err)
			}
			if !strings.Contains(err.Error(), c.field+": ") || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error does not name %s with %q:\n%v", c.field, c.says, err)
			}
		})
	}
	if cfgs := srv.FluxConfigurations(clusterID); len(cfgs) != 0 {
		t.Errorf("a rejected configuration was stored: %+v", cfgs)
	}

	// An api-version whose schema has no OCI source.
	raw, _ := json.Marshal(ociConfig("oci://registry.example/manifests/apps"))
	status, body := doJSON(t, &env{ep: ep}, http.MethodPut, ep.URL+arcsdk.FluxConfigurationID(clusterID, "old")+"?api-version=2023-05-01", string(raw))
	if status != http.StatusBadRequest || !strings.Contains(body, `"target":"properties.sourceKind"`) || !strings.Contains(body, "api-version 2024-11-01 or later") {
		t.Errorf("OCI at api-version 2023-05-01: %d %s", status, body)
	}
}
