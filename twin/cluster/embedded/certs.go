package embedded

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/internal/pki"
)

// Client rate limits. The simulated kubelets use the kubelet's defaults (k8s.io/kubernetes v1.33.13
// pkg/kubelet/apis/config/v1beta1/defaults.go: kubeAPIQPS 50, kubeAPIBurst 100); the twin's admin client
// the same, so scenario drivers are not throttled below what a kubelet may send.
const (
	clientQPS   = 50
	clientBurst = 100
)

// credentials is a cluster's key material, kept in memory for the clients the twin itself makes.
type credentials struct {
	// ca signs the certificates of VM-nodes added to the running cluster (Provider.AddNode).
	ca          *pki.CA
	caPEM       []byte
	admin       pki.KeyPair
	nodes       map[string]pki.KeyPair
	server      string
	contextName string
}

// makeCredentials writes the cluster's PKI and kubeconfigs under l and returns what the twin's own
// clients need. Subjects follow kubeadm: admin in system:masters, system:kube-controller-manager,
// system:kube-scheduler, system:node:<name> in system:nodes.
func makeCredentials(s cluster.Spec, l layout, pt ports, now time.Time) (*credentials, error) {
	if err := os.MkdirAll(l.pki(""), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", l.pki(""), err)
	}
	ca, err := pki.NewCA(s.Name+"-ca", now)
	if err != nil {
		return nil, err
	}
	frontCA, err := pki.NewCA(s.Name+"-front-proxy-ca", now)
	if err != nil {
		return nil, err
	}
	_, svcNet, err := net.ParseCIDR(s.Network.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %q: %w", s.Network.ServiceCIDR, err)
	}
	kubernetesSvcIP := make(net.IP, 4)
	copy(kubernetesSvcIP, svcNet.IP.To4())
	kubernetesSvcIP[3]++ // the first service IP is the kubernetes Service's
	loopback := []net.IP{net.ParseIP("127.0.0.1")}

	issue := func(file string, from *pki.CA, req pki.Request) (pki.KeyPair, error) {
		kp, err := from.Issue(req, now)
		if err != nil {
			return kp, err
		}
		if err := writeFile(l.pki(file+".crt"), kp.CertPEM); err != nil {
			return kp, err
		}
		return kp, writeFile(l.pki(file+".key"), kp.KeyPEM)
	}
	certs := []struct {
		file string
		ca   *pki.CA
		req  pki.Request
	}{
		{"apiserver", ca, pki.Request{
			CommonName: "kube-apiserver", Server: true,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(advertiseAddress), kubernetesSvcIP},
		}},
		{"controller-manager", ca, pki.Request{CommonName: "kube-controller-manager", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{"scheduler", ca, pki.Request{CommonName: "kube-scheduler", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{"front-proxy-client", frontCA, pki.Request{CommonName: "front-proxy-client", Client: true}},
	}
	for _, c := range certs {
		if _, err := issue(c.file, c.ca, c.req); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"ca.crt", ca.CertPEM}, {"ca.key", ca.KeyPEM}, {"front-proxy-ca.crt", frontCA.CertPEM}} {
		if err := writeFile(l.pki(f.name), f.data); err != nil {
			return nil, err
		}
	}
	saKey, saPub, err := pki.ServiceAccountKey()
	if err != nil {
		return nil, err
	}
	if err := writeFile(l.pki("sa.key"), saKey); err != nil {
		return nil, err
	}
	if err := writeFile(l.pki("sa.pub"), saPub); err != nil {
		return nil, err
	}

	cr := &credentials{
		ca:          ca,
		caPEM:       ca.CertPEM,
		nodes:       map[string]pki.KeyPair{},
		server:      "https://127.0.0.1:" + strconv.Itoa(pt.APIServer),
		contextName: "hybridtwin-" + s.Name,
	}
	clients := []struct {
		user string
		req  pki.Request
		file string
	}{
		{"kubernetes-admin", pki.Request{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}, Client: true}, l.adminKubeconfig()},
		{"system:kube-controller-manager", pki.Request{CommonName: "system:kube-controller-manager", Client: true}, l.kubeconfig("controller-manager")},
		{"system:kube-scheduler", pki.Request{CommonName: "system:kube-scheduler", Client: true}, l.kubeconfig("scheduler")},
	}
	for i, c := range clients {
		kp, err := ca.Issue(c.req, now)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			cr.admin = kp
		}
		if err := writeKubeconfig(c.file, s.Name, cr.contextName, c.user, cr.server, ca.CertPEM, kp); err != nil {
			return nil, err
		}
	}
	for _, n := range s.Nodes {
		if err := cr.issueNode(n.Name, now); err != nil {
			return nil, err
		}
	}
	return cr, nil
}

// issueNode makes the client certificate a node's kubelet authenticates with: system:node:<name> in
// system:nodes, as the Node authorizer expects.
func (cr *credentials) issueNode(name string, now time.Time) error {
	kp, err := cr.ca.Issue(pki.Request{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}, Client: true}, now)
	if err != nil {
		return err
	}
	cr.nodes[name] = kp
	return nil
}

// restConfig is a client configuration with the given identity.
func (cr *credentials) restConfig(kp pki.KeyPair, userAgent string) *rest.Config {
	return &rest.Config{
		Host:            cr.server,
		TLSClientConfig: rest.TLSClientConfig{CAData: cr.caPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM},
		QPS:             clientQPS,
		Burst:           clientBurst,
		UserAgent:       userAgent,
	}
}

func writeKubeconfig(path, clusterName, contextName, user, server string, caPEM []byte, kp pki.KeyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	cfg.CurrentContext = contextName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
