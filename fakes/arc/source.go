package arc

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
)

// The sources of a fluxConfiguration: gitRepository (sourceKind GitRepository) and ociRepository
// (sourceKind OCIRepository), validated as the Kubernetes Configuration RP and Flux's CRD schemas would
// refuse them, each problem naming its field.

// digestRE is an OCI content digest as repositoryRef.digest takes it: "sha256:" and 64 lower-case hex
// digits (REST reference: "the value should be in the format 'sha256:'"; OCI image spec, digests).
var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// validateGitSource checks the gitRepository of a GitRepository configuration.
func validateGitSource(bad *badRequest, p *FluxConfigurationProperties) {
	if p.OCIRepository != nil {
		bad.add("properties.ociRepository", "is given but sourceKind is GitRepository: set sourceKind OCIRepository, or remove ociRepository")
	}
	if p.Bucket != nil {
		bad.add("properties.bucket", "is given but sourceKind is GitRepository: set sourceKind Bucket, or remove bucket")
	}
	g := p.GitRepository
	if g == nil {
		bad.add("properties.gitRepository", "is required for sourceKind GitRepository")
		return
	}
	u, err := url.Parse(g.URL)
	switch {
	case g.URL == "":
		bad.add("properties.gitRepository.url", "is required")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh"):
		bad.add("properties.gitRepository.url", "%q must be an http://, https:// or ssh:// URL", g.URL)
	}
	if g.RepositoryRef == nil || *g.RepositoryRef == (RepositoryRefDefinition{}) {
		bad.add("properties.gitRepository.repositoryRef", "is required: set one of branch, tag, semver or commit")
	}
	positive(bad, "properties.gitRepository.syncIntervalInSeconds", g.SyncIntervalInSeconds)
	positive(bad, "properties.gitRepository.timeoutInSeconds", g.TimeoutInSeconds)
	key, hasKey := p.ConfigurationProtectedSettings[SSHPrivateKeySetting]
	if hasKey {
		if _, err := base64.StdEncoding.DecodeString(key); err != nil || key == "" {
			bad.add("properties.configurationProtectedSettings."+SSHPrivateKeySetting, "must be the private key, base64-encoded")
		}
		if u != nil && u.Scheme != "ssh" {
			bad.add("properties.configurationProtectedSettings."+SSHPrivateKeySetting, "is for an ssh:// gitRepository.url; remove it, or use an ssh:// URL")
		}
	}
	if g.SSHKnownHosts != "" {
		if _, err := base64.StdEncoding.DecodeString(g.SSHKnownHosts); err != nil {
			bad.add("properties.gitRepository.sshKnownHosts", "must be the known_hosts content, base64-encoded")
		}
	}
	if g.HTTPSUser != "" && p.ConfigurationProtectedSettings["httpsKey"] == "" && g.LocalAuthRef == "" {
		bad.add("properties.configurationProtectedSettings.httpsKey", "is required with gitRepository.httpsUser (the token or password, base64-encoded)")
	}
}

// validateOCISource checks the ociRepository of an OCIRepository configuration. The fields Azure accepts
// but the twin's cluster side cannot honour (verify, useWorkloadIdentity, serviceAccountName, tlsConfig)
// are accepted here, as ARM accepts them; the agent reports them on the configuration's status.
func validateOCISource(bad *badRequest, p *FluxConfigurationProperties) {
	if p.GitRepository != nil {
		bad.add("properties.gitRepository", "is given but sourceKind is OCIRepository: remove gitRepository (send it as null in a PATCH)")
	}
	if p.Bucket != nil {
		bad.add("properties.bucket", "is given but sourceKind is OCIRepository: remove bucket (send it as null in a PATCH)")
	}
	o := p.OCIRepository
	if o == nil {
		bad.add("properties.ociRepository", "is required for sourceKind OCIRepository: give at least its url, e.g. oci://registry.example/manifests/app")
		return
	}
	const at = "properties.ociRepository"
	switch rest, ok := strings.CutPrefix(o.URL, ociPrefix); {
	case o.URL == "":
		bad.add(at+".url", "is required: the artifact's repository, e.g. oci://registry.example/manifests/app")
	case !ok:
		bad.add(at+".url", "%q must start with oci:// (Flux OCIRepository spec.url)", o.URL)
	default:
		host, repo, _ := strings.Cut(rest, "/")
		last := repo[strings.LastIndex(repo, "/")+1:]
		switch {
		case host == "" || repo == "" || strings.HasSuffix(repo, "/"):
			bad.add(at+".url", "%q must name a registry host and a repository, e.g. oci://registry.example/manifests/app", o.URL)
		case strings.ContainsAny(last, ":@"):
			bad.add(at+".url", "%q carries a tag or digest: put it in ociRepository.repositoryRef.tag or .digest instead", o.URL)
		case repo != strings.ToLower(repo):
			bad.add(at+".url", "%q has upper-case letters in the repository path; OCI repository names are lower case", o.URL)
		}
	}
	if r := o.RepositoryRef; r != nil {
		var set []string
		for _, f := range []struct{ name, v string }{{"tag", r.Tag}, {"semver", r.Semver}, {"digest", r.Digest}} {
			if f.v != "" {
				set = append(set, f.name)
			}
		}
		// The REST reference gives digest precedence over semver over tag, so a second one would be
		// dropped without a word; the twin refuses the combination instead (stricter than ARM, by choice).
		if len(set) > 1 {
			bad.add(at+".repositoryRef", "sets %s: they conflict, set only one of tag, semver or digest (digest would win over semver, semver over tag)", strings.Join(set, " and "))
		}
		if r.Digest != "" && !digestRE.MatchString(r.Digest) {
			bad.add(at+".repositoryRef.digest", "%q must be sha256: followed by 64 lower-case hex digits", r.Digest)
		}
	}
	if ls := o.LayerSelector; ls != nil && ls.Operation != "" && ls.Operation != OCILayerExtract && ls.Operation != OCILayerCopy {
		bad.add(at+".layerSelector.operation", "%q must be %q or %q", ls.Operation, OCILayerExtract, OCILayerCopy)
	}
	positive(bad, at+".syncIntervalInSeconds", o.SyncIntervalInSeconds)
	positive(bad, at+".timeoutInSeconds", o.TimeoutInSeconds)
	if o.LocalAuthRef != "" && !namespaceNameRE.MatchString(o.LocalAuthRef) {
		bad.add(at+".localAuthRef", "%q is not a Kubernetes Secret name (lower-case letters, digits, '-' and '.')", o.LocalAuthRef)
	}
}

// validateBucketSource checks the bucket of a Bucket configuration: url is the S3 endpoint as an http(s)
// URL (the az CLI's validate_bucket_url refuses anything else; the Flux extension puts its host in the
// Bucket's spec.endpoint), bucketName an S3 bucket name, and credentials either accessKey with
// configurationProtectedSettings.bucketSecretKey or a localAuthRef Secret.
func validateBucketSource(bad *badRequest, p *FluxConfigurationProperties) {
	if p.GitRepository != nil {
		bad.add("properties.gitRepository", "is given but sourceKind is Bucket: remove gitRepository (send it as null in a PATCH)")
	}
	if p.OCIRepository != nil {
		bad.add("properties.ociRepository", "is given but sourceKind is Bucket: remove ociRepository (send it as null in a PATCH)")
	}
	b := p.Bucket
	if b == nil {
		bad.add("properties.bucket", "is required for sourceKind Bucket: give at least its url and bucketName")
		return
	}
	const at = "properties.bucket"
	u, err := url.Parse(b.URL)
	switch {
	case b.URL == "":
		bad.add(at+".url", "is required: the S3 endpoint, e.g. https://s3.example.com")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		bad.add(at+".url", "%q must be an http:// or https:// URL of the S3 endpoint", b.URL)
	case u.Path != "" && u.Path != "/":
		bad.add(at+".url", "%q has a path: give the endpoint only and the bucket in bucketName", b.URL)
	}
	switch {
	case b.BucketName == "":
		bad.add(at+".bucketName", "is required: the bucket to sync")
	case !bucketNameRE.MatchString(b.BucketName):
		bad.add(at+".bucketName", "%q is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)", b.BucketName)
	}
	positive(bad, at+".syncIntervalInSeconds", b.SyncIntervalInSeconds)
	positive(bad, at+".timeoutInSeconds", b.TimeoutInSeconds)
	secret := p.ConfigurationProtectedSettings[BucketSecretKeySetting]
	switch {
	case b.LocalAuthRef != "":
		if !namespaceNameRE.MatchString(b.LocalAuthRef) {
			bad.add(at+".localAuthRef", "%q is not a Kubernetes Secret name (lower-case letters, digits, '-' and '.')", b.LocalAuthRef)
		}
	case b.AccessKey != "" && secret == "":
		bad.add("properties.configurationProtectedSettings."+BucketSecretKeySetting, "is required with bucket.accessKey (the secret key, base64-encoded)")
	case b.AccessKey == "" && secret != "":
		bad.add(at+".accessKey", "is required with configurationProtectedSettings.%s", BucketSecretKeySetting)
	}
	if secret != "" {
		if _, err := base64.StdEncoding.DecodeString(secret); err != nil {
			bad.add("properties.configurationProtectedSettings."+BucketSecretKeySetting, "is not base64: encode the secret key")
		}
	}
}

// bucketNameRE is S3's rule for a general purpose bucket name (Amazon S3 User Guide, "General purpose
// bucket naming rules").
var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// redactSecrets blanks what the REST API marks x-ms-secret, which ARM accepts on PUT and never returns:
// configurationProtectedSettings and ociRepository.tlsConfig's certificates and key.
func redactSecrets(c *FluxConfiguration) {
	p := &c.Properties
	p.ConfigurationProtectedSettings = nil
	if o := p.OCIRepository; o != nil && o.TLSConfig != nil {
		o.TLSConfig = &TLSConfigDefinition{}
	}
}
