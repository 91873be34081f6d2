// Package arcconfig is the one mapping from a twin spec's GitOps configuration to the fluxConfiguration
// ARM takes, in ARM's REST shape (fakes/arc's models of api-version 2025-04-01). A Git source is sent
// through the generated SDK client, as `az k8s-configuration flux create` does; its model is the same
// REST shape read back through the SDK's own JSON decoding, so both sources share one mapping.
package arcconfig

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// OCI is a spec's OCI-sourced configuration. A source naming a repository of the twin's registry is read
// from registryHost.
func OCI(g spec.GitOpsConfig, registryHost string) arc.FluxConfiguration {
	o := g.OCI
	def := &arc.OCIRepositoryDefinition{URL: o.URL, SyncIntervalInSeconds: seconds(g.SyncIntervalInSeconds), TimeoutInSeconds: seconds(g.TimeoutInSeconds)}
	if o.Insecure {
		def.Insecure = to.Ptr(true)
	}
	if o.Repository != "" {
		// The twin's registry speaks plain HTTP: Flux refuses it unless the source is insecure.
		def.URL = "oci://" + registryHost + "/" + o.Repository
		def.Insecure = to.Ptr(true)
	}
	if o.Tag != "" || o.Semver != "" || o.Digest != "" {
		def.RepositoryRef = &arc.OCIRepositoryRefDefinition{Tag: o.Tag, Semver: o.Semver, Digest: o.Digest}
	}
	c := common(g)
	c.Properties.SourceKind = arc.SourceKindOCIRepository
	c.Properties.OCIRepository = def
	return c
}

// Git is a spec's Git-sourced configuration in the generated SDK's model (api-version 2023-05-01), read
// from repoURL over HTTPS as user with token (configurationProtectedSettings.httpsKey, base64, as ARM
// takes it).
func Git(g spec.GitOpsConfig, repoURL, user, token string) (armkubernetesconfiguration.FluxConfiguration, error) {
	c := common(g)
	c.Properties.SourceKind = string(armkubernetesconfiguration.SourceKindTypeGitRepository)
	c.Properties.GitRepository = &arc.GitRepositoryDefinition{URL: repoURL, HTTPSUser: user,
		RepositoryRef:         &arc.RepositoryRefDefinition{Branch: g.Ref.Branch, Tag: g.Ref.Tag, Semver: g.Ref.Semver, Commit: g.Ref.Commit},
		SyncIntervalInSeconds: seconds(g.SyncIntervalInSeconds), TimeoutInSeconds: seconds(g.TimeoutInSeconds)}
	c.Properties.ConfigurationProtectedSettings = map[string]string{"httpsKey": base64.StdEncoding.EncodeToString([]byte(token))}
	return sdkModel(g.Name, c)
}

// GitSSH is a spec's Git-sourced configuration read over SSH (gitAuth ssh): repoURL is ssh://, the private
// key goes base64-encoded in configurationProtectedSettings.sshPrivateKey and the known_hosts content
// base64-encoded in gitRepository.sshKnownHosts, as `az k8s-configuration flux create --url ssh://...
// --ssh-private-key-file --known-hosts-file` sends them.
func GitSSH(g spec.GitOpsConfig, repoURL string, identity []byte, knownHosts string) (armkubernetesconfiguration.FluxConfiguration, error) {
	c := common(g)
	c.Properties.SourceKind = string(armkubernetesconfiguration.SourceKindTypeGitRepository)
	c.Properties.GitRepository = &arc.GitRepositoryDefinition{URL: repoURL,
		RepositoryRef:         &arc.RepositoryRefDefinition{Branch: g.Ref.Branch, Tag: g.Ref.Tag, Semver: g.Ref.Semver, Commit: g.Ref.Commit},
		SSHKnownHosts:         base64.StdEncoding.EncodeToString([]byte(knownHosts)),
		SyncIntervalInSeconds: seconds(g.SyncIntervalInSeconds), TimeoutInSeconds: seconds(g.TimeoutInSeconds)}
	c.Properties.ConfigurationProtectedSettings = map[string]string{arc.SSHPrivateKeySetting: base64.StdEncoding.EncodeToString(identity)}
	return sdkModel(g.Name, c)
}

// Bucket is a spec's bucket-sourced configuration in the generated SDK's model (api-version 2023-05-01,
// whose BucketDefinition the SDK has): the bucket read from the S3 endpoint url (plain HTTP on loopback,
// so insecure) with accessKey, and the secret key in configurationProtectedSettings.bucketSecretKey,
// base64, as `az k8s-configuration flux create --kind bucket --secret-key` sends it.
func Bucket(g spec.GitOpsConfig, url, accessKey, secretKey string) (armkubernetesconfiguration.FluxConfiguration, error) {
	c := common(g)
	c.Properties.SourceKind = arc.SourceKindBucket
	c.Properties.Bucket = &arc.BucketDefinition{URL: url, BucketName: g.Bucket.Name, AccessKey: accessKey, Insecure: to.Ptr(true),
		SyncIntervalInSeconds: seconds(g.SyncIntervalInSeconds), TimeoutInSeconds: seconds(g.TimeoutInSeconds)}
	c.Properties.ConfigurationProtectedSettings = map[string]string{arc.BucketSecretKeySetting: base64.StdEncoding.EncodeToString([]byte(secretKey))}
	return sdkModel(g.Name, c)
}

// sdkModel reads a configuration in ARM's REST shape back through the generated SDK's JSON decoding.
func sdkModel(name string, c arc.FluxConfiguration) (armkubernetesconfiguration.FluxConfiguration, error) {
	var out armkubernetesconfiguration.FluxConfiguration
	data, err := json.Marshal(c)
	if err == nil {
		err = json.Unmarshal(data, &out)
	}
	if err != nil {
		return out, fmt.Errorf("fluxConfiguration %s in the SDK's model: %w", name, err)
	}
	return out, nil
}

// common is what every configuration carries whatever its source: scope, namespace, suspend and the
// Kustomizations.
func common(g spec.GitOpsConfig) arc.FluxConfiguration {
	ks := map[string]*arc.KustomizationDefinition{}
	for name, k := range g.Kustomizations {
		kd := &arc.KustomizationDefinition{Path: k.Path, DependsOn: k.DependsOn, Prune: to.Ptr(k.Prune), Force: to.Ptr(k.Force), Wait: k.Wait,
			SyncIntervalInSeconds: seconds(k.SyncIntervalInSeconds), TimeoutInSeconds: seconds(k.TimeoutInSeconds),
			RetryIntervalInSeconds: seconds(k.RetryIntervalInSeconds)}
		if len(k.Substitute) > 0 {
			kd.PostBuild = &arc.PostBuildDefinition{Substitute: k.Substitute}
		}
		ks[name] = kd
	}
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		Scope:          g.Scope,
		Namespace:      g.Namespace,
		Suspend:        to.Ptr(g.Suspend),
		Kustomizations: ks,
	}}
}

// seconds is an ARM integer that is left out (ARM's default) when the spec leaves it zero.
func seconds(n int64) *int64 {
	if n <= 0 {
		return nil
	}
	return to.Ptr(n)
}
