package arc_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

// TestBearerTokens: the fake answers only requests with a token its own token endpoint issued, and
// refuses the others with 401 and ARM's error body, naming why.
func TestBearerTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := arc.NewServer(arc.Options{Now: e.clk.Now})
	otherEP, err := other.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = otherEP.Close(context.Background()) })

	valid, err := arcsdk.Token(ctx, e.ep)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := arcsdk.Token(ctx, otherEP) // well formed, signed by another fake
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	azureAud, err := arcsdk.NewCredential(e.ep).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}

	list := e.ep.URL + "/subscriptions/" + sub + "/providers/Microsoft.Kubernetes/connectedClusters?api-version=2024-01-01"
	cases := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"valid token", "Bearer " + valid, 200, ""},
		{"token for the other ARM audience", "Bearer " + azureAud.Token, 200, ""},
		{"none", "", 401, "AuthenticationFailed"},
		{"not a bearer scheme", "Basic dTpw", 401, "AuthenticationFailed"},
		{"empty bearer", "Bearer ", 401, "AuthenticationFailed"},
		{"not a JWT", "Bearer hybridtwin", 401, "InvalidAuthenticationToken"},
		{"tampered claims", "Bearer " + tampered, 401, "InvalidAuthenticationToken"},
		{"issued by another fake", "Bearer " + foreign, 401, "InvalidAuthenticationToken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, code := get(t, e.ep, list, c.auth)
			if status != c.status || code != c.code {
				t.Fatalf("got %d %q, want %d %q", status, code, c.status, c.code)
			}
		})
	}

	// An hour later (the identity platform's lower bound of a token's life) the same token has expired.
	e.clk.Step(arc.TokenLifetime)
	if status, code := get(t, e.ep, list, "Bearer "+valid); status != 401 || code != "ExpiredAuthenticationToken" {
		t.Fatalf("expired token: %d %q", status, code)
	}
}

// TestSDKWithWrongCredentials: the Azure SDK's clients see the refusal as ARM's 401 ResponseError, and a
// wrong client secret fails at the token endpoint with Entra ID's error.
func TestSDKWithWrongCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := arc.NewServer(arc.Options{})
	otherEP, err := other.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = otherEP.Close(context.Background()) })

	// Tokens from another fake's endpoint, sent to this one.
	c, err := armhybridkubernetes.NewConnectedClusterClient(sub, arcsdk.NewCredential(otherEP), arcsdk.ClientOptions(e.ep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "rg", "c1", nil)
	assertARMError(t, err, http.StatusUnauthorized, "InvalidAuthenticationToken", "token endpoint")

	// This endpoint's principal with a wrong secret gets no token at all.
	p := e.ep.Principal
	p.ClientSecret = "wrong"
	c, err = armhybridkubernetes.NewConnectedClusterClient(sub, arcsdk.NewCredential(e.ep).WithPrincipal(p), arcsdk.ClientOptions(e.ep))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Get(ctx, "rg", "c1", nil); err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: err = %v, want invalid_client AADSTS7000215", err)
	}

	// The right credential reaches the resource (and gets ARM's 404 for a cluster that is not there).
	c, err = armhybridkubernetes.NewConnectedClusterClient(sub, arcsdk.NewCredential(e.ep), arcsdk.ClientOptions(e.ep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "rg", "c1", nil)
	assertARMError(t, err, http.StatusNotFound, "ResourceNotFound", "c1")
}

// TestTokenEndpointRefusals: the client-credentials grant checks tenant, grant type, client, secret and
// scope, each with its own OAuth error.
func TestTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t)
	p := e.ep.Principal
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {p.ClientID}, "client_secret": {p.ClientSecret}, "scope": {arcsdk.DefaultScope}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	cases := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   string
	}{
		{"good", p.TenantID, good, 200, ""},
		{"other tenant", "00000000-0000-0000-0000-000000000000", good, 400, "invalid_tenant"},
		{"password grant", p.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type"},
		{"unknown client", p.TenantID, with("client_id", "someone"), 400, "unauthorized_client"},
		{"wrong secret", p.TenantID, with("client_secret", "guess"), 401, "invalid_client"},
		{"graph scope", p.TenantID, with("scope", "https://graph.microsoft.com/.default"), 400, "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := e.ep.Client().PostForm(e.ep.URL+"/"+c.tenant+"/oauth2/v2.0/token", c.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || (c.code != "" && body["error"] != c.code) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
			if c.code == "" && (body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"] != float64(arc.TokenLifetime/time.Second)) {
				t.Fatalf("token response %v", body)
			}
		})
	}
}

// get sends a GET with the given Authorization header and returns the status and ARM error code.
func get(t *testing.T, ep *arc.Endpoint, u, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ep.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &body); err != nil || body.Error.Message == "" {
			t.Fatalf("%d without ARM's error body: %s", resp.StatusCode, data)
		}
	}
	return resp.StatusCode, body.Error.Code
}
