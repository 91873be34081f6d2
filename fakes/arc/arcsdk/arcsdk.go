// Package arcsdk points the official Azure SDK for Go at the Arc fake (fakes/arc): a credential that gets
// bearer tokens from the fake's token endpoint, client options for its endpoint, a long-running-operation
// poll loop finer than the SDK's one second minimum, connecting a cluster the way `az connectedk8s connect` does, and fluxConfigurations
// PUT/GET at api-version 2025-04-01 (the OCIRepository source, which the generated v2 client's 2023-05-01
// models lack) over the SDK's ARM pipeline and poller. The twin and every test that drives the fake
// through the SDK use it, so they all reach the fake the same way.
//
// Unlike fakes/arc itself, which imports only the standard library, this package imports the Azure SDK:
// it is the client side.
package arcsdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
)

// Credential gets bearer tokens from the fake's token endpoint with the client-credentials grant of the
// endpoint's service principal, as azidentity.ClientSecretCredential does against Entra ID. The SDK's
// bearer-token policy caches each token until shortly before it expires.
type Credential struct {
	ep   *arc.Endpoint
	p    arc.Principal
	http *http.Client
}

// NewCredential returns the credential of the endpoint's service principal.
func NewCredential(ep *arc.Endpoint) *Credential {
	return &Credential{ep: ep, p: ep.Principal, http: ep.Client()}
}

// WithPrincipal returns a credential for another principal at the same endpoint (tests use it for a wrong
// secret).
func (c *Credential) WithPrincipal(p arc.Principal) *Credential {
	return &Credential{ep: c.ep, p: p, http: c.http}
}

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	scope := strings.Join(opts.Scopes, " ")
	if scope == "" {
		scope = DefaultScope
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.p.ClientID}, "client_secret": {c.p.ClientSecret}, "scope": {scope}}
	tokenURL := c.ep.AuthorityHost + c.p.TenantID + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get a token for client %s from %s: %w", c.p.ClientID, tokenURL, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get a token from %s: %d with an unreadable body: %w", tokenURL, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("get a token for client %s from %s: %d %s: %s", c.p.ClientID, tokenURL, resp.StatusCode, body.Error, body.Description)
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)}, nil
}

var _ azcore.TokenCredential = (*Credential)(nil)

// DefaultScope is ARM's scope for the client-credentials grant (the ResourceManager audience below with
// the /.default suffix).
const DefaultScope = "https://management.core.windows.net//.default"

// Token is one bearer token of the endpoint's principal, for a raw ARM request.
func Token(ctx context.Context, ep *arc.Endpoint) (string, error) {
	t, err := NewCredential(ep).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{DefaultScope}})
	return t.Token, err
}

// AuthorizedClient is an HTTP client that trusts the endpoint's certificate and sends a bearer token of
// the endpoint's principal on every request that carries no Authorization header, for ARM requests made
// without an SDK client (e.g. policy assignments in their REST shape).
func AuthorizedClient(ep *arc.Endpoint) *http.Client {
	base := ep.Client()
	return &http.Client{Transport: &bearerTransport{base: base.Transport, cred: NewCredential(ep)}}
}

type bearerTransport struct {
	base http.RoundTripper
	cred *Credential

	mu  sync.Mutex
	tok azcore.AccessToken
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") != "" {
		return b.base.RoundTrip(r)
	}
	b.mu.Lock()
	// Refresh five minutes before expiry, as azcore's bearer-token policy does.
	if time.Until(b.tok.ExpiresOn) < 5*time.Minute {
		t, err := b.cred.GetToken(r.Context(), policy.TokenRequestOptions{Scopes: []string{DefaultScope}})
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.tok = t
	}
	tok := b.tok.Token
	b.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.base.RoundTrip(r)
}

// ClientOptions send an ARM client's requests to the fake's endpoint over TLS, trusting its certificate,
// with retries off (the fake does not throttle; a retry would only hide a wrong answer).
func ClientOptions(ep *arc.Endpoint) *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: ep.AuthorityHost,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: ep.URL, Audience: "https://management.core.windows.net/"},
			},
		},
		Transport: ep.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

// Poll drives a long-running operation to its result, polling every `every`. The SDK's PollUntilDone
// refuses intervals under one second outside tests, while the fake completes operations in milliseconds.
func Poll[T any](ctx context.Context, p *runtime.Poller[T], every time.Duration) (T, error) {
	var zero T
	for !p.Done() {
		if _, err := p.Poll(ctx); err != nil {
			return zero, err
		}
		if p.Done() {
			break
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
	}
	return p.Result(ctx)
}

// ConnectCluster registers a Kubernetes cluster as Microsoft.Kubernetes/connectedClusters, as
// `az connectedk8s connect` does for an AKS hybrid cluster on Azure Stack HCI, and waits until its
// provisioning succeeded.
func ConnectCluster(ctx context.Context, ep *arc.Endpoint, subscription, resourceGroup, name, location string, every time.Duration) (armhybridkubernetes.ConnectedCluster, error) {
	c, err := armhybridkubernetes.NewConnectedClusterClient(subscription, NewCredential(ep), ClientOptions(ep))
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("connect cluster %s: %w", name, err)
	}
	p, err := c.BeginCreate(ctx, resourceGroup, name, armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr(location),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{AgentPublicKeyCertificate: to.Ptr(""),
			Distribution: to.Ptr("aks_hybrid"), Infrastructure: to.Ptr("azure_stack_hci")},
	}, nil)
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("connect cluster %s in resource group %s: %w", name, resourceGroup, err)
	}
	res, err := Poll(ctx, p, every)
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("wait for cluster %s to connect: %w", name, err)
	}
	return res.ConnectedCluster, nil
}
