package arc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Principal is the service principal the fake's token endpoint knows: a client-credentials identity, as
// `az ad sp create-for-rbac` prints it (tenant, appId, password). Clients of the fake get bearer tokens for
// it at TokenURL and send them to the ARM endpoint; the fake refuses every other token.
type Principal struct {
	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// tokenClaims are the claims of the fake's access tokens: a subset of the Microsoft identity platform's
// v1 access-token claims that ARM checks (aud, iss, tid, appid, nbf, exp).
type tokenClaims struct {
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	TenantID  string `json:"tid"`
	AppID     string `json:"appid"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expires   int64  `json:"exp"`
}

// authFailure is why a request's bearer token was refused, in ARM's words.
type authFailure struct{ code, message string }

// serveToken answers the client-credentials grant of the Microsoft identity platform's token endpoint
// (POST /{tenant}/oauth2/v2.0/token, form fields grant_type, client_id, client_secret, scope) with
// {"token_type":"Bearer","expires_in",...,"access_token"}; errors in its OAuth shape
// {"error","error_description"} (RFC 6749 section 5.2; AADSTS codes as Entra ID sends them).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	oauthError := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		oauthError(http.StatusMethodNotAllowed, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body could not be parsed: "+err.Error())
		return
	}
	p := s.opts.Principal
	switch {
	case !strings.EqualFold(tenant, p.TenantID):
		oauthError(http.StatusBadRequest, "invalid_tenant", fmt.Sprintf("AADSTS90002: Tenant '%s' not found. The Azure fake's tenant is '%s'.", tenant, p.TenantID))
	case r.PostForm.Get("grant_type") != "client_credentials":
		oauthError(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type; the Azure fake issues tokens for grant_type=client_credentials.")
	case r.PostForm.Get("client_id") != p.ClientID:
		oauthError(http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", r.PostForm.Get("client_id"), p.TenantID))
	case subtle.ConstantTimeCompare([]byte(r.PostForm.Get("client_secret")), []byte(p.ClientSecret)) != 1:
		oauthError(http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", p.ClientID))
	default:
		aud, ok := audienceOf(r.PostForm.Get("scope"))
		if !ok {
			oauthError(http.StatusBadRequest, "invalid_scope", fmt.Sprintf("AADSTS70011: The provided value for scope '%s' is not valid: the Azure fake issues tokens for %s with the suffix /.default.", r.PostForm.Get("scope"), strings.Join(armAudiences, ", ")))
			return
		}
		now := s.opts.Now()
		tok := s.signToken(tokenClaims{Audience: aud, Issuer: "https://sts.windows.net/" + p.TenantID + "/", TenantID: p.TenantID,
			AppID: p.ClientID, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(TokenLifetime).Unix()})
		secs := int(TokenLifetime / time.Second)
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
	}
}

// audienceOf maps a v2 scope ("<resource>/.default") to the token audience, if it is ARM's.
func audienceOf(scope string) (string, bool) {
	for _, sc := range strings.Fields(scope) {
		res, ok := strings.CutSuffix(sc, "/.default")
		if !ok {
			continue
		}
		for _, a := range armAudiences {
			if res == a || res+"/" == a || res == a+"/" {
				return res, true
			}
		}
	}
	return "", false
}

// signToken returns a JWT (RFC 7519) signed with the server's key: header.claims.signature in base64url.
// HS256 stands in for Entra ID's RS256; only this server has to verify it.
func (s *Server) signToken(c tokenClaims) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(c) // a struct of strings and integers always marshals
	unsigned := head + "." + enc.EncodeToString(body)
	return unsigned + "." + enc.EncodeToString(s.mac(unsigned))
}

func (s *Server) mac(data string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// authenticate checks a request's bearer token as ARM does before anything else, and says why it is
// refused, with ARM's error codes and messages.
func (s *Server) authenticate(r *http.Request) *authFailure {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &authFailure{"AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."}
	}
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return &authFailure{"AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format."}
	}
	invalid := &authFailure{"InvalidAuthenticationToken", "The access token is invalid. The Azure fake accepts only tokens from its token endpoint (" +
		s.tokenPath() + ", grant_type=client_credentials, with the twin's service principal)."}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return invalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return invalid
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c tokenClaims
	if err != nil || json.Unmarshal(body, &c) != nil {
		return invalid
	}
	if !slices.Contains(armAudiences, c.Audience) {
		return &authFailure{"InvalidAuthenticationTokenAudience", fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.",
			c.Audience, strings.Join(armAudiences, "','"))}
	}
	now := s.opts.Now()
	if exp := time.Unix(c.Expires, 0); !now.Before(exp) {
		return &authFailure{"ExpiredAuthenticationToken", fmt.Sprintf("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			exp.UTC().Format("1/2/2006 3:04:05 PM"), now.UTC().Format("1/2/2006 3:04:05 PM"))}
	}
	return nil
}

func (s *Server) tokenPath() string { return "/" + s.opts.Principal.TenantID + "/oauth2/v2.0/token" }

// tokenRoute reports whether path is the token endpoint of some tenant, and which.
func tokenRoute(path string) (tenant string, ok bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" {
		return segs[0], true
	}
	return "", false
}

// Principal is the service principal whose client credentials the token endpoint accepts.
func (s *Server) Principal() Principal { return s.opts.Principal }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
