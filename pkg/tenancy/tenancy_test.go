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
		labels map[string]string
		want   string
	}{
		"matching tenant":      {labels: map[string]string{v1alpha1.TenantLabel: "research"}, want: "research"},
		"no labels":            {want: tenancy.Open},
		"label of no tenant":   {labels: map[string]string{v1alpha1.TenantLabel: "nobody"}, want: tenancy.Open},
		"other labels ignored": {labels: map[string]string{"app": "x"}, want: tenancy.Open},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tenancy.Resolve(v1alpha1.DefaultTierPolicy(), tc.labels)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A namespace named like a tenant is not that tenant: identity comes from
// the labels the policy selects on, never from the name.
func TestResolveIgnoresTheNamespaceName(t *testing.T) {
	got, err := tenancy.Resolve(v1alpha1.DefaultTierPolicy(), nil)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Open, got)
	got, err = tenancy.Resolve(nil, map[string]string{v1alpha1.TenantLabel: "research"})
	require.NoError(t, err)
	assert.Equal(t, tenancy.Open, got, "no policy, no tenants")
}

func TestAllowed(t *testing.T) {
	policy := func(open *v1alpha1.OpenTenant) *v1alpha1.TierPolicy {
		p := v1alpha1.DefaultTierPolicy()
		p.Spec.Tenants = []v1alpha1.Tenant{{Name: "product", AllowedTiers: []string{"inference"}}}
		p.Spec.OpenTenant = open
		return p
	}
	tests := map[string]struct {
		policy *v1alpha1.TierPolicy
		tenant string
		tier   string
		want   bool
	}{
		"an allowed tier":                   {policy: policy(nil), tenant: "product", tier: "inference", want: true},
		"a tier the tenant may not claim":   {policy: policy(nil), tenant: "product", tier: "training"},
		"a tenant the policy does not name": {policy: policy(nil), tenant: "ghost", tier: "inference"},
		"open tenant, openTenant unset":     {policy: policy(nil), tenant: tenancy.Open, tier: "training", want: true},
		"open tenant, an allowed tier":      {policy: policy(&v1alpha1.OpenTenant{AllowedTiers: []string{"dev"}}), tenant: tenancy.Open, tier: "dev", want: true},
		"open tenant, another tier":         {policy: policy(&v1alpha1.OpenTenant{AllowedTiers: []string{"dev"}}), tenant: tenancy.Open, tier: "training"},
		"open tenant allowed nothing":       {policy: policy(&v1alpha1.OpenTenant{}), tenant: tenancy.Open, tier: "dev"},
		"openTenant leaves tenants alone":   {policy: policy(&v1alpha1.OpenTenant{}), tenant: "product", tier: "inference", want: true},
		"no policy":                         {tenant: "product", tier: "training", want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tenancy.Allowed(tc.policy, tc.tenant, tc.tier))
		})
	}
}

func TestCheckGPU(t *testing.T) {
	ts := func(claim, tenant string) tenancy.Use {
		return tenancy.Use{Claim: claim, Tenant: tenant, Mode: tenancy.ModeShared, Strategy: "TimeSlicing"}
	}
	mps := func(claim, tenant string) tenancy.Use {
		return tenancy.Use{Claim: claim, Tenant: tenant, Mode: tenancy.ModeShared, Strategy: "MPS"}
	}
	whole := func(claim, tenant string) tenancy.Use {
		return tenancy.Use{Claim: claim, Tenant: tenant, Mode: tenancy.ModeWhole}
	}
	mig := func(claim, tenant string) tenancy.Use {
		return tenancy.Use{Claim: claim, Tenant: tenant, Mode: tenancy.ModeMIG}
	}
	tests := map[string]struct {
		use     tenancy.Use
		holders []tenancy.Use
		wantErr error
		want    []string
	}{
		"free GPU":                           {use: whole("a/c", "research")},
		"same tenant shares":                 {use: ts("a/c", "research"), holders: []tenancy.Use{ts("a/h", "research")}},
		"open tenant shares with itself":     {use: ts("x/c", tenancy.Open), holders: []tenancy.Use{ts("y/h", tenancy.Open)}},
		"MIG beside MIG of another tenant":   {use: mig("a/c", "research"), holders: []tenancy.Use{mig("b/h", "product")}},
		"soft-shared, other tenant":          {use: ts("a/c", "research"), holders: []tenancy.Use{ts("b/h", "product")}, wantErr: tenancy.ErrCrossTenant, want: []string{"research", "product", "GPU-1", "b/h", "a/c"}},
		"whole claim on another's shares":    {use: whole("a/c", "research"), holders: []tenancy.Use{ts("b/h", "product")}, wantErr: tenancy.ErrCrossTenant},
		"MIG claim on another's shares":      {use: mig("a/c", "research"), holders: []tenancy.Use{mps("b/h", "product")}, wantErr: tenancy.ErrCrossTenant},
		"open claim on a tenant's shares":    {use: whole("x/c", tenancy.Open), holders: []tenancy.Use{ts("b/h", "product")}, wantErr: tenancy.ErrCrossTenant, want: []string{"(open"}},
		"whole claim on own shares":          {use: whole("a/c", "research"), holders: []tenancy.Use{ts("a/h", "research")}, wantErr: tenancy.ErrGPUBusy},
		"anything on a whole GPU":            {use: ts("a/c", "research"), holders: []tenancy.Use{whole("a/h", "research")}, wantErr: tenancy.ErrGPUBusy, want: []string{"holds it whole"}},
		"share beside MIG":                   {use: ts("a/c", "research"), holders: []tenancy.Use{mig("a/h", "research")}, wantErr: tenancy.ErrGPUBusy},
		"MPS claim on a time-sliced GPU":     {use: mps("a/c", "research"), holders: []tenancy.Use{ts("a/h", "research")}, wantErr: tenancy.ErrGPUBusy, want: []string{"under TimeSlicing"}},
		"MIG holder beside an own whole":     {use: whole("a/c", "research"), holders: []tenancy.Use{mig("a/h", "research")}, wantErr: tenancy.ErrGPUBusy},
		"the other tenant's MIG is no bar":   {use: mig("a/c", "research"), holders: []tenancy.Use{mig("b/h", "product"), mig("c/h", "dev")}},
		"cross-tenant wins over busy":        {use: whole("a/c", "research"), holders: []tenancy.Use{whole("a/h", "research"), ts("b/h", "product")}, wantErr: tenancy.ErrCrossTenant},
		"time-sliced GPU stays one tenant's": {use: ts("a/c", "research"), holders: []tenancy.Use{ts("a/h", "research"), ts("b/h", "product")}, wantErr: tenancy.ErrCrossTenant},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tenancy.CheckGPU("GPU-1", tc.use, tc.holders)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			for _, s := range tc.want {
				assert.ErrorContains(t, err, s)
			}
		})
	}
}
