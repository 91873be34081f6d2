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

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

func sshConfig() arc.FluxConfiguration {
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		SourceKind: arc.SourceKindGitRepository,
		GitRepository: &arc.GitRepositoryDefinition{URL: "ssh://git@git.example:2222/org/apps.git",
			RepositoryRef: &arc.RepositoryRefDefinition{Branch: "main"},
			SSHKnownHosts: base64.StdEncoding.EncodeToString([]byte("[git.example]:2222 ssh-ed25519 AAAA\n"))},
		ConfigurationProtectedSettings: map[string]string{arc.SSHPrivateKeySetting: base64.StdEncoding.EncodeToString([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"))},
		Kustomizations:                 map[string]*arc.KustomizationDefinition{"apps": {Path: "./apps"}},
	}}
}

// An SSH configuration is accepted with its key in the protected settings (kept, never returned); a key or
// known_hosts that is not base64, or a key for an https:// URL, gets ARM's 400 naming the field.
func TestSSHFluxConfigurations(t *testing.T) {
	srv, ep, clusterID := ociEnv(t)
	ctx := context.Background()
	id := arcsdk.FluxConfigurationID(clusterID, "over-ssh")
	res, err := arcsdk.PutFluxConfiguration(ctx, ep, id, sshConfig(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Properties.ConfigurationProtectedSettings) != 0 {
		t.Errorf("protected settings returned: %v", res.Properties.ConfigurationProtectedSettings)
	}
	if got := srv.ProtectedSettings(id)[arc.SSHPrivateKeySetting]; got != sshConfig().Properties.ConfigurationProtectedSettings[arc.SSHPrivateKeySetting] {
		t.Errorf("protected sshPrivateKey kept = %q", got)
	}
	cases := []struct {
		name   string
		mutate func(*arc.FluxConfiguration)
		field  string
		says   string
	}{
		{"key not base64", func(c *arc.FluxConfiguration) {
			c.Properties.ConfigurationProtectedSettings[arc.SSHPrivateKeySetting] = "not base64!"
		}, "properties.configurationProtectedSettings.sshPrivateKey", "base64-encoded"},
		{"known hosts not base64", func(c *arc.FluxConfiguration) { c.Properties.GitRepository.SSHKnownHosts = "not base64!" },
			"properties.gitRepository.sshKnownHosts", "base64-encoded"},
		{"key for https", func(c *arc.FluxConfiguration) { c.Properties.GitRepository.URL = "https://git.example/org/apps.git" },
			"properties.configurationProtectedSettings.sshPrivateKey", "is for an ssh:// gitRepository.url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := sshConfig()
			c.mutate(&cfg)
			_, err := arcsdk.PutFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(clusterID, "bad"), cfg, time.Millisecond)
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400", err)
			}
			if !strings.Contains(err.Error(), c.field+": ") || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error does not name %s with %q:\n%v", c.field, c.says, err)
			}
		})
	}
}
