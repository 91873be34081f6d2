package arc_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

func bucketConfig() arc.FluxConfiguration {
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		SourceKind: arc.SourceKindBucket,
		Namespace:  "apps",
		Bucket: &arc.BucketDefinition{URL: "http://127.0.0.1:7070", BucketName: "platform-apps", AccessKey: "HTACCESSKEY",
			Insecure: ptrTo(true), SyncIntervalInSeconds: ptrTo[int64](60)},
		ConfigurationProtectedSettings: map[string]string{arc.BucketSecretKeySetting: base64.StdEncoding.EncodeToString([]byte("s3cret"))},
		Kustomizations:                 map[string]*arc.KustomizationDefinition{"apps": {Path: "./apps"}},
	}}
}

// The bucket source as the generated SDK sends it (api-version 2023-05-01, the SDK's BucketDefinition):
// accepted, defaulted, read back without the secret key, which the agent reads from the protected settings.
func TestBucketFluxConfigurationWithTheAzureSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cluster := e.connect(t, "rg-hci", "workload-1")
	cfg := armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
		SourceKind: to.Ptr(armkubernetesconfiguration.SourceKindTypeBucket),
		Bucket: &armkubernetesconfiguration.BucketDefinition{URL: to.Ptr("http://127.0.0.1:7070"), BucketName: to.Ptr("platform-apps"),
			AccessKey: to.Ptr("HTACCESSKEY"), Insecure: to.Ptr(true)},
		ConfigurationProtectedSettings: map[string]*string{"bucketSecretKey": to.Ptr(base64.StdEncoding.EncodeToString([]byte("s3cret")))},
		Kustomizations:                 map[string]*armkubernetesconfiguration.KustomizationDefinition{"apps": {Path: to.Ptr("./apps")}},
	}}
	poller, err := e.flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "objects", cfg, nil)
	if err != nil {
		t.Fatalf("create a Bucket fluxConfiguration: %v", err)
	}
	e.clk.Step(10 * time.Second)
	res, err := poller.PollUntilDone(ctx, fast)
	if err != nil {
		t.Fatal(err)
	}
	b := res.Properties.Bucket
	if *res.Properties.SourceKind != armkubernetesconfiguration.SourceKindTypeBucket || *b.BucketName != "platform-apps" ||
		*b.AccessKey != "HTACCESSKEY" || !*b.Insecure || *b.SyncIntervalInSeconds != 600 || *b.TimeoutInSeconds != 600 {
		t.Errorf("bucket read back = %+v", b)
	}
	if len(res.Properties.ConfigurationProtectedSettings) != 0 {
		t.Errorf("protected settings returned: %v", res.Properties.ConfigurationProtectedSettings)
	}
	id := *cluster.ID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/objects"
	if got := e.srv.ProtectedSettings(id)["bucketSecretKey"]; got != base64.StdEncoding.EncodeToString([]byte("s3cret")) {
		t.Errorf("protected bucketSecretKey kept = %q", got)
	}
}

// Bad Bucket configurations get ARM's 400 InvalidRequestContent, each problem naming its field.
func TestBadBucketFluxConfigurationsNameTheField(t *testing.T) {
	srv, ep, clusterID := ociEnv(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		mutate func(*arc.FluxConfiguration)
		field  string
		says   string
	}{
		{"no bucket", func(c *arc.FluxConfiguration) { c.Properties.Bucket = nil }, "properties.bucket", "is required for sourceKind Bucket"},
		{"no url", func(c *arc.FluxConfiguration) { c.Properties.Bucket.URL = "" }, "properties.bucket.url", "is required"},
		{"not http", func(c *arc.FluxConfiguration) { c.Properties.Bucket.URL = "s3://objects" }, "properties.bucket.url", "must be an http:// or https:// URL"},
		{"url with a path", func(c *arc.FluxConfiguration) { c.Properties.Bucket.URL = "http://127.0.0.1:7070/platform-apps" }, "properties.bucket.url", "bucketName"},
		{"no bucket name", func(c *arc.FluxConfiguration) { c.Properties.Bucket.BucketName = "" }, "properties.bucket.bucketName", "is required"},
		{"bad bucket name", func(c *arc.FluxConfiguration) { c.Properties.Bucket.BucketName = "Platform_Apps" }, "properties.bucket.bucketName", "not an S3 bucket name"},
		{"access key without secret", func(c *arc.FluxConfiguration) { c.Properties.ConfigurationProtectedSettings = nil },
			"properties.configurationProtectedSettings.bucketSecretKey", "is required with bucket.accessKey"},
		{"secret not base64", func(c *arc.FluxConfiguration) {
			c.Properties.ConfigurationProtectedSettings = map[string]string{arc.BucketSecretKeySetting: "not base64!"}
		}, "properties.configurationProtectedSettings.bucketSecretKey", "is not base64"},
		{"secret without access key", func(c *arc.FluxConfiguration) { c.Properties.Bucket.AccessKey = "" }, "properties.bucket.accessKey", "is required with"},
		{"zero timeout", func(c *arc.FluxConfiguration) { c.Properties.Bucket.TimeoutInSeconds = ptrTo[int64](0) }, "properties.bucket.timeoutInSeconds", "positive"},
		{"git and bucket", func(c *arc.FluxConfiguration) {
			c.Properties.GitRepository = &arc.GitRepositoryDefinition{URL: "https://git.example/apps"}
		}, "properties.gitRepository", "sourceKind is Bucket"},
		{"bucket under git kind", func(c *arc.FluxConfiguration) { c.Properties.SourceKind = arc.SourceKindGitRepository }, "properties.bucket", "sourceKind is GitRepository"},
		{"azure blob", func(c *arc.FluxConfiguration) { c.Properties.SourceKind = "AzureBlob" }, "properties.sourceKind", "AzureBlob is not"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := bucketConfig()
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
	// A localAuthRef instead of keys is accepted.
	cfg := bucketConfig()
	cfg.Properties.Bucket.AccessKey, cfg.Properties.ConfigurationProtectedSettings = "", nil
	cfg.Properties.Bucket.LocalAuthRef = "s3-credentials"
	if _, err := arcsdk.PutFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(clusterID, "local"), cfg, time.Millisecond); err != nil {
		t.Fatalf("bucket with localAuthRef: %v", err)
	}
}
