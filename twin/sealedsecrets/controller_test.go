package sealedsecrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/sealedsecrets"
)

var sealedGVR = schema.GroupVersionResource{Group: "bitnami.com", Version: "v1alpha1", Resource: "sealedsecrets"}

// The real controller, outside the cluster, against a real API server: it installs its CRD, generates its
// key pair into kube-system, serves the certificate on 127.0.0.1 only, and unseals a SealedSecret that
// kubeseal sealed with that certificate into the Secret; Stop ends the process.
func TestControllerUnsealsWhatKubesealSealed(t *testing.T) {
	testenv.RequireSealedSecrets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a cold build of both tools included
	defer cancel()
	cfg := testenv.APIServer(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testenv.Kubeconfig(t, cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := sealedsecrets.Start(ctx, sealedsecrets.Options{Kubeconfig: kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Stop() })
	for _, p := range ctl.Ports() {
		if got := listeners(t, p); len(got) != 1 || got[0] != "0100007F" {
			t.Errorf("port %d: listening on %v (hex, /proc/net/tcp), want 127.0.0.1 (0100007F) only", p, got)
		}
	}

	kube := kubernetes.NewForConfigOrDie(cfg)
	keys, err := kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "sealedsecrets.bitnami.com/sealed-secrets-key=active"})
	if err != nil || len(keys.Items) != 1 {
		t.Fatalf("key Secrets in kube-system: %v, %v", keys, err)
	}
	cert, err := ctl.Cert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(cert) != string(keys.Items[0].Data[corev1.TLSCertKey]) {
		t.Fatalf("the served certificate is not the key Secret's:\n%s", cert)
	}

	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\ntype: Opaque\nstringData:\n  password: s3cr3t-value\n"
	sealed, err := sealedsecrets.Seal(ctx, nil, cert, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "s3cr3t-value") {
		t.Fatalf("the sealed manifest holds the value in plain text:\n%s", sealed)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(sealed, &u.Object); err != nil {
		t.Fatalf("kubeseal's output: %v\n%s", err, sealed)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	if _, err := dyn.Resource(sealedGVR).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Secret
	for got == nil {
		s, err := kube.CoreV1().Secrets("default").Get(ctx, "db", metav1.GetOptions{})
		if err == nil {
			got = s
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Secret was not unsealed: %v; controller log:\n%s", err, tail(ctl.LogPath()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if string(got.Data["password"]) != "s3cr3t-value" || len(got.OwnerReferences) != 1 || got.OwnerReferences[0].Kind != "SealedSecret" {
		t.Errorf("unsealed Secret: data %q, owners %+v", got.Data, got.OwnerReferences)
	}

	pid := ctl.PID()
	if err := ctl.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("controller pid %d still there after Stop (kill 0: %v)", pid, err)
	}
}

// Bad options name the field and what to do.
func TestStartRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts sealedsecrets.Options
		want string
	}{
		{sealedsecrets.Options{StateDir: t.TempDir()}, "Kubeconfig is empty"},
		{sealedsecrets.Options{Kubeconfig: filepath.Join(t.TempDir(), "missing"), StateDir: t.TempDir()}, "no such file"},
		{sealedsecrets.Options{Kubeconfig: os.Args[0]}, "StateDir is empty"},
	} {
		_, err := sealedsecrets.Start(context.Background(), tc.opts)
		if !errors.Is(err, sealedsecrets.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want ErrInvalidOptions with %q", tc.opts, err, tc.want)
		}
	}
}

// listeners are the local IPv4 addresses (as /proc/net/tcp writes them) listening on port, and "v6" for
// each IPv6 listener.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(fs[1], ":")
			if n, err := strconv.ParseInt(p, 16, 32); !ok || err != nil || int(n) != port {
				continue
			}
			if f == "/proc/net/tcp6" {
				addr = "v6"
			}
			out = append(out, addr)
		}
	}
	return out
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
