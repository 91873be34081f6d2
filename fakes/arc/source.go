package arc

import (
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

// redactSecrets blanks what the REST API marks x-ms-secret, which ARM accepts on PUT and never returns:
// configurationProtectedSettings and ociRepository.tlsConfig's certificates and key.
func redactSecrets(c *FluxConfiguration) {
	p := &c.Properties
	p.ConfigurationProtectedSettings = nil
	if o := p.OCIRepository; o != nil && o.TLSConfig != nil {
		o.TLSConfig = &TLSConfigDefinition{}
	}
}
