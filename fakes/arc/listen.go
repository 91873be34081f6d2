package arc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// Endpoint is a running fake ARM endpoint.
type Endpoint struct {
	// URL is the management endpoint, e.g. https://127.0.0.1:41234 -- use it as the SDK's
	// cloud.ResourceManager endpoint.
	URL string
	// CAPEM is the PEM certificate that signed the endpoint's TLS certificate; trust it in the client.
	CAPEM []byte
	// RootCAs is CAPEM as a pool.
	RootCAs *x509.CertPool
	// AuthorityHost is the identity platform endpoint (the SDK's cloud ActiveDirectoryAuthorityHost) and
	// TokenURL its client-credentials token endpoint for Principal's tenant: POST there for a bearer token.
	AuthorityHost, TokenURL string
	// Principal is the service principal the token endpoint accepts: hand it only to clients that may
	// call the fake.
	Principal Principal

	srv  *http.Server
	done chan error
}

// Listen serves the fake over TLS on addr ("127.0.0.1:0" for an OS-assigned port) with a certificate
// made for 127.0.0.1 and localhost. The Azure SDK sends bearer tokens only over TLS, so TLS is not optional.
func (s *Server) Listen(addr string) (*Endpoint, error) {
	cert, caPEM, err := selfSignedCert()
	if err != nil {
		return nil, fmt.Errorf("make the Azure fake's TLS certificate: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the Azure fake on %s: %w", addr, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ep := &Endpoint{URL: "https://" + ln.Addr().String(), CAPEM: caPEM, RootCAs: pool, Principal: s.opts.Principal, done: make(chan error, 1)}
	ep.AuthorityHost = ep.URL + "/"
	ep.TokenURL = ep.URL + s.tokenPath()
	s.mu.Lock()
	s.baseURL = ep.URL
	s.mu.Unlock()
	ep.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { ep.done <- ep.srv.ServeTLS(ln, "", "") }()
	return ep, nil
}

// Client returns an HTTP client that trusts the endpoint's certificate.
func (e *Endpoint) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.RootCAs, MinVersion: tls.VersionTLS12}}}
}

// Close stops the endpoint and waits for it.
func (e *Endpoint) Close(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	if serveErr := <-e.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hybridtwin Azure fake", Organization: []string{"hybridtwin"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              []string{"localhost", "management.azure.local"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}
