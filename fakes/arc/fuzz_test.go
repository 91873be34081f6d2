package arc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

// FuzzFluxConfigurationPut sends arbitrary request bodies to the fluxConfigurations PUT and PATCH
// endpoints of a connected cluster, at the oldest and newest api-versions. The fake must never panic or
// answer 5xx (a body is the client's fault, never the server's), every answer must be JSON, and every
// 4xx must be ARM's error shape {"error":{"code","message"}}. The seed corpus runs with `go test`;
// `go tool task fuzz` searches further. (The "stalls" at 0 execs/sec seen here earlier are the fuzzer
// minimizing a new interesting input, up to -fuzzminimizetime, 60 s by default, during which the counter
// stands still; the task passes 2 s.)
func FuzzFluxConfigurationPut(f *testing.F) {
	for _, c := range []arc.FluxConfiguration{ociConfig("oci://registry.example/manifests/apps"), {Properties: arc.FluxConfigurationProperties{
		SourceKind: arc.SourceKindGitRepository, Namespace: "flux-system", Scope: "cluster",
		GitRepository:  &arc.GitRepositoryDefinition{URL: "https://git.example/fleet.git", RepositoryRef: &arc.RepositoryRefDefinition{Branch: "main"}},
		Kustomizations: map[string]*arc.KustomizationDefinition{"infra": {Path: "./infra"}, "apps": {Path: "./apps", DependsOn: []string{"infra"}}},
	}}} {
		data, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"properties":{"kustomizations":{"a":{"dependsOn":["a"]},"b":null}}}`))
	f.Add([]byte(`{"properties":{"sourceKind":"Bucket","suspend":"yes"}}`))
	f.Add([]byte(`{"properties":{"gitRepository":{"syncIntervalInSeconds":-1,"repositoryRef":{}}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{`))
	f.Add([]byte{})

	srv := arc.NewServer(arc.Options{Now: func() time.Time { return time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) }})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ep.Close(context.Background()) })
	cc, err := arcsdk.ConnectCluster(context.Background(), ep, sub, "rg-fuzz", "fuzz", "westeurope", time.Millisecond)
	if err != nil {
		f.Fatal(err)
	}
	path := *cc.ID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/fuzz"
	tok, err := arcsdk.Token(context.Background(), ep)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, method := range []string{http.MethodPut, http.MethodPatch} {
			for _, v := range []string{"2022-03-01", "2025-04-01"} {
				req := httptest.NewRequest(method, path+"?api-version="+v, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("%s api-version %s: %d for a client's body: %s", method, v, rec.Code, rec.Body)
				}
				var out map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil && rec.Body.Len() > 0 {
					t.Fatalf("%s api-version %s: answer is not JSON (%d): %q", method, v, rec.Code, rec.Body)
				}
				if rec.Code >= 400 {
					e, _ := out["error"].(map[string]any)
					if e == nil || e["code"] == "" || e["message"] == "" {
						t.Fatalf("%s api-version %s: %d without ARM's error shape: %s", method, v, rec.Code, rec.Body)
					}
				}
			}
		}
	})
}
