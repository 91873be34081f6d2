package providers

import (
	"errors"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

func TestForPicksTheNamedProvider(t *testing.T) {
	tests := []struct {
		name    string
		asked   cluster.ProviderName
		want    cluster.ProviderName
		wantErr error
	}{
		{"default is embedded", "", cluster.ProviderEmbedded, nil},
		{"embedded", cluster.ProviderEmbedded, cluster.ProviderEmbedded, nil},
		{"kind", cluster.ProviderKind, cluster.ProviderKind, nil},
		{"unknown is refused", "k3d", "", cluster.ErrInvalidSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := For(tc.asked, Options{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.want {
				t.Fatalf("provider = %s, want %s", p.Name(), tc.want)
			}
		})
	}
}
