package arcagent

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
)

// The source of a configuration, as the Flux extension makes it: one object named after the
// configuration in its namespace, a GitRepository for sourceKind GitRepository (the default), an
// OCIRepository for sourceKind OCIRepository or a Bucket for sourceKind Bucket (REST reference,
// FluxConfigurationProperties.sourceKind).

// applySource creates or updates the configuration's source and returns its Flux kind and the name of the
// credentials Secret the agent made for it ("" if none).
func (a *Agent) applySource(ctx context.Context, c arc.FluxConfiguration, labels map[string]string) (kind, secret string, err error) {
	switch c.Properties.SourceKind {
	case "", arc.SourceKindGitRepository:
		secret, err := a.applyGitRepository(ctx, c, labels)
		return sourcev1.GitRepositoryKind, secret, err
	case arc.SourceKindOCIRepository:
		return sourcev1.OCIRepositoryKind, "", a.applyOCIRepository(c, labels)
	case arc.SourceKindBucket:
		secret, err := a.applyBucket(ctx, c, labels)
		return sourcev1.BucketKind, secret, err
	default:
		return "", "", fmt.Errorf("configuration %s: properties.sourceKind %q: %w (GitRepository, OCIRepository and Bucket are)", c.Name, c.Properties.SourceKind, ErrUnsupported)
	}
}

func (a *Agent) applyGitRepository(ctx context.Context, c arc.FluxConfiguration, labels map[string]string) (string, error) {
	p := c.Properties
	g := p.GitRepository
	if g == nil {
		return "", fmt.Errorf("configuration %s has sourceKind GitRepository but no properties.gitRepository", c.Name)
	}
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: p.Namespace, Labels: labels},
		Spec: sourcev1.GitRepositorySpec{
			URL:      g.URL,
			Interval: seconds(g.SyncIntervalInSeconds, time.Duration(arc.DefaultSyncIntervalSeconds)*time.Second),
			Suspend:  p.Suspend != nil && *p.Suspend,
		},
	}
	t := seconds(g.TimeoutInSeconds, time.Duration(arc.DefaultTimeoutSeconds)*time.Second)
	repo.Spec.Timeout = &t
	if r := g.RepositoryRef; r != nil {
		repo.Spec.Reference = &sourcev1.GitRepositoryRef{Branch: r.Branch, Tag: r.Tag, SemVer: r.Semver, Commit: r.Commit}
	}
	secret := ""
	if g.HTTPSUser != "" {
		secret = c.Name + "-auth"
		key := a.opts.Azure.ProtectedSettings(c.ID)["httpsKey"]
		pw, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			return "", fmt.Errorf("configuration %s: configurationProtectedSettings.httpsKey is not base64: %w", c.Name, err)
		}
		if err := a.ensureSecret(ctx, p.Namespace, secret, labels, map[string][]byte{"username": []byte(g.HTTPSUser), "password": pw}); err != nil {
			return "", err
		}
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	if key, ok := a.opts.Azure.ProtectedSettings(c.ID)[arc.SSHPrivateKeySetting]; ok && strings.HasPrefix(g.URL, "ssh://") {
		data, err := sshSecretData(c.Name, key, g.SSHKnownHosts)
		if err != nil {
			return "", err
		}
		secret = c.Name + "-auth"
		if err := a.ensureSecret(ctx, p.Namespace, secret, labels, data); err != nil {
			return "", err
		}
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	if g.LocalAuthRef != "" {
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: g.LocalAuthRef}
	}
	if err := a.opts.Target.ApplyGitRepository(repo); err != nil {
		return "", fmt.Errorf("configuration %s: GitRepository: %w", c.Name, err)
	}
	return secret, nil
}

// sshSecretData is the Secret of an ssh:// source, as the Flux extension makes it from
// configurationProtectedSettings.sshPrivateKey and gitRepository.sshKnownHosts (both base64): the keys
// source-controller reads, identity and known_hosts. Without sshKnownHosts the Secret has no known_hosts,
// and source-controller reports it required.
func sshSecretData(name, key, knownHosts string) (map[string][]byte, error) {
	identity, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("configuration %s: configurationProtectedSettings.%s is not base64: %w", name, arc.SSHPrivateKeySetting, err)
	}
	data := map[string][]byte{"identity": identity}
	if knownHosts != "" {
		kh, err := base64.StdEncoding.DecodeString(knownHosts)
		if err != nil {
			return nil, fmt.Errorf("configuration %s: gitRepository.sshKnownHosts is not base64: %w", name, err)
		}
		data["known_hosts"] = kh
	}
	return data, nil
}

// applyOCIRepository maps properties.ociRepository onto a Flux OCIRepository field by field: url ->
// spec.url, repositoryRef {tag, semver, digest} -> spec.ref, layerSelector -> spec.layerSelector,
// insecure -> spec.insecure, localAuthRef -> spec.secretRef (a docker-registry Secret the user made),
// syncIntervalInSeconds -> spec.interval, timeoutInSeconds -> spec.timeout, suspend -> spec.suspend.
func (a *Agent) applyOCIRepository(c arc.FluxConfiguration, labels map[string]string) error {
	p := c.Properties
	o := p.OCIRepository
	if o == nil {
		return fmt.Errorf("configuration %s has sourceKind OCIRepository but no properties.ociRepository", c.Name)
	}
	if err := unsupportedOCIFields(o); err != nil {
		return fmt.Errorf("configuration %s: %w", c.Name, err)
	}
	t, ok := a.opts.Target.(OCITarget)
	if !ok {
		return fmt.Errorf("configuration %s: sourceKind OCIRepository: the cluster's GitOps engine (%T) takes no OCIRepository sources: %w", c.Name, a.opts.Target, ErrUnsupported)
	}
	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: p.Namespace, Labels: labels},
		Spec: sourcev1.OCIRepositorySpec{
			URL:      o.URL,
			Interval: seconds(o.SyncIntervalInSeconds, time.Duration(arc.DefaultSyncIntervalSeconds)*time.Second),
			Insecure: o.Insecure != nil && *o.Insecure,
			Suspend:  p.Suspend != nil && *p.Suspend,
		},
	}
	to := seconds(o.TimeoutInSeconds, time.Duration(arc.DefaultTimeoutSeconds)*time.Second)
	repo.Spec.Timeout = &to
	// No repositoryRef: Flux pulls the tag "latest", as the REST reference says the tag defaults to.
	if r := o.RepositoryRef; r != nil && *r != (arc.OCIRepositoryRefDefinition{}) {
		repo.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: r.Tag, SemVer: r.Semver, Digest: r.Digest}
	}
	if ls := o.LayerSelector; ls != nil && *ls != (arc.LayerSelectorDefinition{}) {
		repo.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: ls.MediaType, Operation: ls.Operation}
	}
	if o.LocalAuthRef != "" {
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: o.LocalAuthRef}
	}
	if err := t.ApplyOCIRepository(repo); err != nil {
		return fmt.Errorf("configuration %s: OCIRepository: %w", c.Name, err)
	}
	return nil
}

// applyBucket maps properties.bucket onto a Flux Bucket of the generic provider, as the Flux extension
// does: url -> spec.endpoint (its host and port: a Bucket's endpoint has no scheme), bucketName ->
// spec.bucketName, insecure -> spec.insecure, syncIntervalInSeconds -> spec.interval, timeoutInSeconds ->
// spec.timeout, suspend -> spec.suspend; accessKey with configurationProtectedSettings.bucketSecretKey
// (base64) become a Secret "<name>-auth" with source-controller's keys accesskey and secretkey, named in
// spec.secretRef; localAuthRef names the user's own Secret instead.
func (a *Agent) applyBucket(ctx context.Context, c arc.FluxConfiguration, labels map[string]string) (string, error) {
	p := c.Properties
	b := p.Bucket
	if b == nil {
		return "", fmt.Errorf("configuration %s has sourceKind Bucket but no properties.bucket", c.Name)
	}
	t, ok := a.opts.Target.(BucketTarget)
	if !ok {
		return "", fmt.Errorf("configuration %s: sourceKind Bucket: the cluster's GitOps engine (%T) takes no Bucket sources: %w", c.Name, a.opts.Target, ErrUnsupported)
	}
	u, err := url.Parse(b.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("configuration %s: properties.bucket.url %q is not an http(s) URL of the S3 endpoint", c.Name, b.URL)
	}
	obj := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: p.Namespace, Labels: labels},
		Spec: sourcev1.BucketSpec{
			Provider:   sourcev1.BucketProviderGeneric,
			BucketName: b.BucketName,
			Endpoint:   u.Host,
			Insecure:   b.Insecure != nil && *b.Insecure,
			Interval:   seconds(b.SyncIntervalInSeconds, time.Duration(arc.DefaultSyncIntervalSeconds)*time.Second),
			Suspend:    p.Suspend != nil && *p.Suspend,
		},
	}
	to := seconds(b.TimeoutInSeconds, time.Duration(arc.DefaultTimeoutSeconds)*time.Second)
	obj.Spec.Timeout = &to
	secret := ""
	if b.AccessKey != "" && b.LocalAuthRef == "" {
		secret = c.Name + "-auth"
		sk, err := base64.StdEncoding.DecodeString(a.opts.Azure.ProtectedSettings(c.ID)[arc.BucketSecretKeySetting])
		if err != nil {
			return "", fmt.Errorf("configuration %s: configurationProtectedSettings.%s is not base64: %w", c.Name, arc.BucketSecretKeySetting, err)
		}
		if err := a.ensureSecret(ctx, p.Namespace, secret, labels, map[string][]byte{"accesskey": []byte(b.AccessKey), "secretkey": sk}); err != nil {
			return "", err
		}
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	if b.LocalAuthRef != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: b.LocalAuthRef}
	}
	if err := t.ApplyBucket(obj); err != nil {
		return "", fmt.Errorf("configuration %s: Bucket: %w", c.Name, err)
	}
	return secret, nil
}

// unsupportedOCIFields names each ociRepository field the twin cannot honour. The Flux extension turns
// them into OCIRepository spec.verify, spec.provider "azure" with a workload identity, spec.serviceAccountName
// and spec.certSecretRef; none of those run here, and dropping them would let a configuration pass in the
// twin that behaves differently in Azure.
func unsupportedOCIFields(o *arc.OCIRepositoryDefinition) error {
	const at = "properties.ociRepository."
	var problems []string
	if o.Verify != nil {
		problems = append(problems, at+"verify: signature verification (cosign, notation) does not run in the twin; remove verify to test the rest")
	}
	if o.UseWorkloadIdentity != nil && *o.UseWorkloadIdentity {
		problems = append(problems, at+"useWorkloadIdentity: there is no Azure workload identity in the twin; use localAuthRef with a docker-registry Secret")
	}
	if o.ServiceAccountName != "" {
		problems = append(problems, at+"serviceAccountName: service-account image pull secrets are not read by the twin; use localAuthRef")
	}
	if o.TLSConfig != nil && *o.TLSConfig != (arc.TLSConfigDefinition{}) {
		problems = append(problems, at+"tlsConfig: registry client certificates and CAs are not used by the twin; the twin's registry needs none")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", strings.Join(problems, "; "), ErrUnsupported)
}

// deleteSource removes a configuration's source of the given Flux kind.
func (a *Agent) deleteSource(namespace, name, kind string) error {
	if kind == sourcev1.BucketKind {
		t, ok := a.opts.Target.(BucketTarget)
		if !ok {
			return nil // never applied: the engine takes no Bucket sources
		}
		return t.DeleteBucket(namespace, name)
	}
	if kind == sourcev1.OCIRepositoryKind {
		t, ok := a.opts.Target.(OCITarget)
		if !ok {
			return nil // never applied: the engine takes no OCI sources
		}
		return t.DeleteOCIRepository(namespace, name)
	}
	return a.opts.Target.DeleteGitRepository(namespace, name)
}

// source returns the Flux kind of a configuration's source, its conditions and artifact, and whether the
// engine has it.
func (a *Agent) source(p arc.FluxConfigurationProperties, name string) (string, []metav1.Condition, *meta.Artifact, bool) {
	if p.SourceKind == arc.SourceKindBucket {
		t, ok := a.opts.Target.(BucketTarget)
		if !ok {
			return sourcev1.BucketKind, nil, nil, false
		}
		b, found := t.Bucket(p.Namespace, name)
		if !found {
			return sourcev1.BucketKind, nil, nil, false
		}
		return sourcev1.BucketKind, b.Status.Conditions, b.Status.Artifact, true
	}
	if p.SourceKind == arc.SourceKindOCIRepository {
		t, ok := a.opts.Target.(OCITarget)
		if !ok {
			return sourcev1.OCIRepositoryKind, nil, nil, false
		}
		o, found := t.OCIRepository(p.Namespace, name)
		if !found {
			return sourcev1.OCIRepositoryKind, nil, nil, false
		}
		return sourcev1.OCIRepositoryKind, o.Status.Conditions, o.Status.Artifact, true
	}
	g, found := a.opts.Target.GitRepository(p.Namespace, name)
	if !found {
		return sourcev1.GitRepositoryKind, nil, nil, false
	}
	return sourcev1.GitRepositoryKind, g.Status.Conditions, g.Status.Artifact, true
}
