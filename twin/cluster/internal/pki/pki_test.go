package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("hybridtwin-test-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM does not parse")
	}

	tests := []struct {
		name  string
		req   Request
		usage x509.ExtKeyUsage
		dns   string
	}{
		{"serving", Request{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes.default.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc"},
		{"admin client", Request{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}, Client: true}, x509.ExtKeyUsageClientAuth, ""},
		{"node client", Request{CommonName: "system:node:moc-1", Organization: []string{"system:nodes"}, Client: true}, x509.ExtKeyUsageClientAuth, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := ca.Issue(tc.req, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
				t.Fatalf("certificate and key do not match: %v", err)
			}
			block, _ := pem.Decode(kp.CertPEM)
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.dns, KeyUsages: []x509.ExtKeyUsage{tc.usage}, CurrentTime: now}); err != nil {
				t.Fatalf("does not verify against the CA for %v: %v", tc.usage, err)
			}
			if cert.Subject.CommonName != tc.req.CommonName || len(cert.Subject.Organization) != len(tc.req.Organization) {
				t.Fatalf("subject = %v, want CN=%s O=%v", cert.Subject, tc.req.CommonName, tc.req.Organization)
			}
			if got := cert.NotAfter.Sub(now); got < CertValidity-time.Minute {
				t.Fatalf("valid for %s, want %s", got, CertValidity)
			}
		})
	}
}

func TestIssueRejectsRequestsWithoutNameOrUsage(t *testing.T) {
	ca, err := NewCA("ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(Request{Server: true}, time.Now()); err == nil {
		t.Fatal("a certificate without a common name was issued")
	}
	if _, err := ca.Issue(Request{CommonName: "x"}, time.Now()); err == nil {
		t.Fatal("a certificate without usage was issued")
	}
}

func TestServiceAccountKeyIsAnRSAPair(t *testing.T) {
	priv, pub, err := ServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := pem.Decode(priv)
	key, err := x509.ParsePKCS1PrivateKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := pem.Decode(pub)
	pk, err := x509.ParsePKIXPublicKey(ub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pk) {
		t.Fatal("public key does not belong to the private key")
	}
	if key.N.BitLen() != serviceAccountKeyBits {
		t.Fatalf("key has %d bits, want %d", key.N.BitLen(), serviceAccountKeyBits)
	}
}
