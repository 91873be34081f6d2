package reconciler_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hybridtwin/hybridtwin/reconciler"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of klog and slog.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientGoLogsGoToTheLogger: when a watched kind goes away under a running drift watch (its CRD is
// deleted), client-go's reflector logs ("Failed to watch", "Warning: watch ended with error"). Those
// lines must reach the reconciler's Options.Logger, not klog's global output (the user's terminal).
func TestClientGoLogsGoToTheLogger(t *testing.T) {
	var klogOut syncBuffer
	klog.LogToStderr(false)
	klog.SetOutput(&klogOut)
	t.Cleanup(func() {
		klog.Flush()
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	})
	var logged syncBuffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.Level(-10)}))
	e := newEnv(t, func(o *reconciler.Options) { o.Logger = logger })
	ctx := context.Background()

	group := "logs" + randHex(3) + ".test.hybridtwin.io"
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: group, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
					XPreserveUnknownFields: ptr.To(true)}}}}},
	}
	g := e.g
	g.Expect(apiextensionsv1.AddToScheme(e.c.Scheme())).To(Succeed())
	g.Expect(e.c.Create(ctx, crd)).To(Succeed())
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), crd) })
	g.Eventually(func() bool {
		var got apiextensionsv1.CustomResourceDefinition
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(crd), &got); err != nil {
			return false
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())

	widget := "apiVersion: " + group + "/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: " + e.ns + "\nspec:\n  size: 1\n"
	sha := e.commit(map[string]string{"apps/w.yaml": widget})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps"))
	e.waitApplied("apps", sha)

	// The drift watch of Widgets is running; take the kind away under it.
	g.Expect(e.c.Delete(ctx, crd)).To(Succeed())
	g.Eventually(logged.String).WithTimeout(eventually).WithPolling(poll).Should(
		ContainSubstring("reflector="), "client-go's reflector messages reach Options.Logger")
	klog.Flush()
	for _, line := range strings.Split(klogOut.String(), "\n") {
		g.Expect(line).NotTo(ContainSubstring("reflector"), "no reflector line through klog's global output")
	}
}
