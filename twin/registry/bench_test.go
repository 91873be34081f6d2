package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// BenchmarkPublish measures generating a small image and pushing it under a new tag (the CI step that ends
// in the registry). Results as JSON: go test -run '^$' -bench Publish -json ./twin/registry/
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	r, err := registry.Start(ctx, registry.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop(ctx)
	c := r.Client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Publish(ctx, "apps/bench", fmt.Sprintf("1.0.%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStart measures starting and stopping an in-process registry.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		r, err := registry.Start(ctx, registry.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
