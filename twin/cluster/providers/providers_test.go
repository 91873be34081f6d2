package providers

import (
	"errors"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

func TestForPicksTheSpecsProvider(t *testing.T) {
	tests := []struct {
		name    string
		specs   []cluster.Spec
		want    cluster.ProviderName
		wantErr error
	}{
		{"default is embedded", []cluster.Spec{{Name: "a"}}, cluster.ProviderEmbedded, nil},
		{"embedded", []cluster.Spec{{Name: "a", Provider: cluster.ProviderEmbedded}, {Name: "b"}}, cluster.ProviderEmbedded, nil},
		{"kind", []cluster.Spec{{Name: "a", Provider: cluster.ProviderKind}, {Name: "b", Provider: cluster.ProviderKind}}, cluster.ProviderKind, nil},
		{"mixed is refused", []cluster.Spec{{Name: "a", Provider: cluster.ProviderKind}, {Name: "b"}}, "", cluster.ErrInvalidSpec},
		{"unknown is refused", []cluster.Spec{{Name: "a", Provider: "k3d"}}, "", cluster.ErrInvalidSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ForSpecs(tc.specs, Options{})
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
