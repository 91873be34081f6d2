// Package arcconfig is the one mapping from a twin spec's GitOps configuration to the fluxConfiguration
// ARM takes: a Git source in the generated SDK's shape (what ` + "`az k8s-configuration flux create`" + ` sends),
// an OCI source in the REST shape of api-version 2025-04-01 (the generated client has no OCI models).
package arcconfig

import (
	"encoding/base64"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// OCI is a spec's OCI-sourced configuration in the REST shape of api-version 2025-04-01.
func OCI(g spec.GitOpsConfig, registryHost string) arc.FluxConfiguration {
	o := g.OCI
	def := &arc.OCIRepositoryDefinition{URL: o.URL}
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
	if g.SyncIntervalInSeconds > 0 {
		def.SyncIntervalInSeconds = to.Ptr(g.SyncIntervalInSeconds)
	}
	if g.TimeoutInSeconds > 0 {
		def.TimeoutInSeconds = to.Ptr(g.TimeoutInSeconds)
	}
	ks := map[string]*arc.KustomizationDefinition{}
	for name, k := range g.Kustomizations {
		kd := &arc.KustomizationDefinition{Path: k.Path, DependsOn: k.DependsOn, Prune: to.Ptr(k.Prune), Force: to.Ptr(k.Force), Wait: k.Wait}
		if k.SyncIntervalInSeconds > 0 {
			kd.SyncIntervalInSeconds = to.Ptr(k.SyncIntervalInSeconds)
		}
		if k.TimeoutInSeconds > 0 {
			kd.TimeoutInSeconds = to.Ptr(k.TimeoutInSeconds)
		}
		if k.RetryIntervalInSeconds > 0 {
			kd.RetryIntervalInSeconds = to.Ptr(k.RetryIntervalInSeconds)
		}
		if len(k.Substitute) > 0 {
			kd.PostBuild = &arc.PostBuildDefinition{Substitute: k.Substitute}
		}
		ks[name] = kd
	}
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		Scope:          g.Scope,
		Namespace:      g.Namespace,
		Suspend:        to.Ptr(g.Suspend),
		SourceKind:     arc.SourceKindOCIRepository,
		OCIRepository:  def,
		Kustomizations: ks,
	}}
}

// Git is a spec's Git-sourced configuration in the generated SDK's shape (api-version 2023-05-01), read
// over HTTPS with user and token (the token goes in configurationProtectedSettings.httpsKey, base64, as
// ARM takes it).
func Git(g spec.GitOpsConfig, repoURL, user, token string) armkubernetesconfiguration.FluxConfiguration {
	ref := &armkubernetesconfiguration.RepositoryRefDefinition{}
	if g.Ref.Branch != "" {
		ref.Branch = to.Ptr(g.Ref.Branch)
	}
	if g.Ref.Tag != "" {
		ref.Tag = to.Ptr(g.Ref.Tag)
	}
	if g.Ref.Semver != "" {
		ref.Semver = to.Ptr(g.Ref.Semver)
	}
	if g.Ref.Commit != "" {
		ref.Commit = to.Ptr(g.Ref.Commit)
	}
	repo := &armkubernetesconfiguration.GitRepositoryDefinition{URL: to.Ptr(repoURL), RepositoryRef: ref,
		HTTPSUser: to.Ptr(user)}
	if g.SyncIntervalInSeconds > 0 {
		repo.SyncIntervalInSeconds = to.Ptr(g.SyncIntervalInSeconds)
	}
	if g.TimeoutInSeconds > 0 {
		repo.TimeoutInSeconds = to.Ptr(g.TimeoutInSeconds)
	}
	ks := map[string]*armkubernetesconfiguration.KustomizationDefinition{}
	for name, k := range g.Kustomizations {
		kd := &armkubernetesconfiguration.KustomizationDefinition{Path: to.Ptr(k.Path), Prune: to.Ptr(k.Prune), Force: to.Ptr(k.Force), Wait: k.Wait}
		for _, d := range k.DependsOn {
			kd.DependsOn = append(kd.DependsOn, to.Ptr(d))
		}
		if k.SyncIntervalInSeconds > 0 {
			kd.SyncIntervalInSeconds = to.Ptr(k.SyncIntervalInSeconds)
		}
		if k.TimeoutInSeconds > 0 {
			kd.TimeoutInSeconds = to.Ptr(k.TimeoutInSeconds)
		}
		if k.RetryIntervalInSeconds > 0 {
			kd.RetryIntervalInSeconds = to.Ptr(k.RetryIntervalInSeconds)
		}
		if len(k.Substitute) > 0 {
			kd.PostBuild = &armkubernetesconfiguration.PostBuildDefinition{Substitute: map[string]*string{}}
			for key, v := range k.Substitute {
				kd.PostBuild.Substitute[key] = to.Ptr(v)
			}
		}
		ks[name] = kd
	}
	return armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
		Scope:         to.Ptr(armkubernetesconfiguration.ScopeType(g.Scope)),
		Namespace:     to.Ptr(g.Namespace),
		Suspend:       to.Ptr(g.Suspend),
		SourceKind:    to.Ptr(armkubernetesconfiguration.SourceKindTypeGitRepository),
		GitRepository: repo,
		ConfigurationProtectedSettings: map[string]*string{
			"httpsKey": to.Ptr(base64.StdEncoding.EncodeToString([]byte(token)))},
		Kustomizations: ks,
	}}
}
