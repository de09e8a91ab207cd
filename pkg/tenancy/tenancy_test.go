package tenancy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

func TestResolve(t *testing.T) {
	tests := map[string]struct {
		namespace string
		labels    map[string]string
		want      string
	}{
		"matching tenant":      {namespace: "ml-a", labels: map[string]string{v1alpha1.TenantLabel: "research"}, want: "research"},
		"no labels":            {namespace: "team-x", want: "team-x"},
		"label of no tenant":   {namespace: "team-y", labels: map[string]string{v1alpha1.TenantLabel: "nobody"}, want: "team-y"},
		"other labels ignored": {namespace: "team-z", labels: map[string]string{"app": "x"}, want: "team-z"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tenancy.Resolve(v1alpha1.DefaultTierPolicy(), tc.namespace, tc.labels)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResolveWithoutPolicy(t *testing.T) {
	got, err := tenancy.Resolve(nil, "ns", nil)
	require.NoError(t, err)
	assert.Equal(t, "ns", got)
}

func TestCheckColocation(t *testing.T) {
	tests := map[string]struct {
		holders []tenancy.Holder
		wantErr []string
	}{
		"free GPU":    {},
		"same tenant": {holders: []tenancy.Holder{{Claim: "a/c1", Tenant: "research"}}},
		"other tenant": {
			holders: []tenancy.Holder{{Claim: "b/c2", Tenant: "product"}},
			wantErr: []string{`tenant "research"`, `tenant "product"`, "GPU-1", "b/c2", "a/c"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tenancy.CheckColocation("GPU-1", "a/c", "research", tc.holders)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tenancy.ErrCrossTenant)
			for _, s := range tc.wantErr {
				assert.ErrorContains(t, err, s)
			}
		})
	}
}
