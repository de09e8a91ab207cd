package slices_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// tenantPolicy: a time-sliced dev tier that tenants research and product
// may both use.
func tenantPolicy() *v1alpha1.TierPolicy {
	p := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingTimeSlicing).Obj()
	for _, name := range []string{"research", "product"} {
		p.Spec.Tenants = append(p.Spec.Tenants, v1alpha1.Tenant{Name: name, AllowedTiers: []string{"dev"}})
	}
	return p
}

// tenantClaim is a dev claim with the selector the tenancy admission policy
// adds for the namespace's tenant.
func tenantClaim(name, tenant string) *resourceapi.ResourceClaim {
	return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName("dev")).
		Capacity(tslices.CapCompute, "250").Selector(tslices.TenantSelector(tenant)).Obj()
}

func TestTenantSlotsPublished(t *testing.T) {
	rs := build(t, tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) }), nil, tenantPolicy())
	assert.Equal(t, []string{"gpu-0-tenant-research", "gpu-0-tenant-product", "gpu-0-open", "gpu-1-tenant-research", "gpu-1-tenant-product", "gpu-1-open"},
		names(devices(rs)))
	for _, d := range devices(rs) {
		require.Len(t, d.ConsumesCounters, 1, d.Name)
		assert.True(t, *d.AllowMultipleAllocations, d.Name)
		assert.Contains(t, d.Attributes, resourceapi.QualifiedName(tslices.AttrUUID), "prepare finds the GPU by uuid")
	}
	assert.Equal(t, []string{"research", "product", ""}, tslices.TenantSlots(tenantPolicy(), "dev"))
	assert.Nil(t, tslices.TenantSlots(tierratest.StandardPolicy(), "dev"), "no tenants: one shared device per GPU")
}

// The scheduler's allocator itself keeps tenants apart: one tenant's claims
// share a GPU, another tenant's claims go to the next GPU, and a GPU another
// tenant left is free again.
func TestTenantSlotsKeepTenantsApart(t *testing.T) {
	l4s := tierratest.Machine(3, func(i int) inventory.GPU { return tierratest.L4(i) })
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			ctx := context.Background()
			c := newCluster(t, l4s, nil, tenantPolicy(), f)
			alloc := func(claim *resourceapi.ResourceClaim) []string {
				got, err := c.Allocate(ctx, nodeName, claim)
				require.NoError(t, err)
				return got
			}
			assert.Equal(t, []string{"gpu-0-tenant-research"}, alloc(tenantClaim("r1", "research")))
			assert.Equal(t, []string{"gpu-0-tenant-research"}, alloc(tenantClaim("r2", "research")), "one tenant shares")
			assert.Equal(t, []string{"gpu-1-tenant-product"}, alloc(tenantClaim("p1", "product")), "never beside research")
			assert.Equal(t, []string{"gpu-2-open"}, alloc(tenantClaim("o1", tslices.OpenTenant)))
			assert.Nil(t, alloc(tenantClaim("p2", "nobody")), "a tenant with no slot gets nothing")
			for i := range 2 {
				assert.Equal(t, []string{"gpu-1-tenant-product"}, alloc(tenantClaim(fmt.Sprintf("p%d", i+3), "product")))
			}

			// Research leaves GPU 0: product may have it now.
			after := newCluster(t, l4s, nil, tenantPolicy(), f)
			for _, claim := range c.Allocated {
				if claim.Name[0] != 'r' {
					after.Allocated = append(after.Allocated, claim)
				}
			}
			got, err := after.Allocate(ctx, nodeName, tenantClaim("p9", "product"))
			require.NoError(t, err)
			assert.Equal(t, []string{"gpu-0-tenant-product"}, got, "the GPU research left")
		})
	}
}

// slotTenants maps each published tenant slot to the tenant it serves.
func slotTenants(t *testing.T, policy *v1alpha1.TierPolicy) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range devices(build(t, tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) }), nil, policy)) {
		if _, ok := d.Attributes[tslices.AttrTenant]; ok {
			out[d.Name] = tslices.StringAttribute(d, tslices.AttrTenant)
		}
	}
	return out
}

// A tenant's slot keeps its name under any policy edit that keeps the
// tenant: a claim that holds research's slot is never found on a device
// that now serves product.
func TestTenantSlotNamesSurvivePolicyEdits(t *testing.T) {
	withTenants := func(names ...string) *v1alpha1.TierPolicy {
		p := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingTimeSlicing).Obj()
		for _, n := range names {
			p.Spec.Tenants = append(p.Spec.Tenants, v1alpha1.Tenant{Name: n, AllowedTiers: []string{"dev"}})
		}
		return p
	}
	before := slotTenants(t, withTenants("research", "product"))
	require.Equal(t, map[string]string{
		"gpu-0-tenant-research": "research", "gpu-0-tenant-product": "product", "gpu-0-open": "",
		"gpu-1-tenant-research": "research", "gpu-1-tenant-product": "product", "gpu-1-open": "",
	}, before)
	tests := map[string]*v1alpha1.TierPolicy{
		"reordered":                withTenants("product", "research"),
		"a tenant inserted before": withTenants("batch", "research", "ml", "product"),
		"a tenant removed":         withTenants("product"),
	}
	for name, policy := range tests {
		t.Run(name, func(t *testing.T) {
			after := slotTenants(t, policy)
			for device, tenant := range after {
				if was, ok := before[device]; ok {
					assert.Equal(t, was, tenant, "device %s changed tenant", device)
				}
			}
			for device, tenant := range before {
				if slices.Contains(tenantNames(policy), tenant) || tenant == tslices.OpenTenant {
					assert.Equal(t, tenant, after[device], "tenant %q lost its slot %s", tenant, device)
				}
			}
		})
	}
}

func tenantNames(p *v1alpha1.TierPolicy) []string {
	var out []string
	for _, t := range p.Spec.Tenants {
		out = append(out, t.Name)
	}
	return out
}

// Slot names are device names: DNS labels of at most 63 characters, also
// for the longest tenant names, unique per tenant and stable.
func TestTenantDeviceName(t *testing.T) {
	long := strings.Repeat("a", 55)
	tests := map[string]struct {
		index  int
		tenant string
		want   string
	}{
		"short name":               {index: 3, tenant: "research", want: "gpu-3-tenant-research"},
		"open slot":                {index: 3, tenant: tslices.OpenTenant, want: "gpu-3-open"},
		"exactly fits":             {index: 7, tenant: strings.Repeat("r", 50), want: "gpu-7-tenant-" + strings.Repeat("r", 50)},
		"63 characters":            {index: 127, tenant: strings.Repeat("x", 63)},
		"long, same prefix, one":   {index: 0, tenant: long + "-one"},
		"long, same prefix, other": {index: 0, tenant: long + "-other"},
		"cut before a dash":        {index: 0, tenant: strings.Repeat("b", 39) + "-" + strings.Repeat("c", 20)},
	}
	seen := map[string]string{}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tslices.TenantDeviceName(tc.index, tc.tenant)
			if tc.want != "" {
				assert.Equal(t, tc.want, got)
			}
			assert.Empty(t, validation.IsDNS1123Label(got), "device name %q", got)
			assert.Equal(t, got, tslices.TenantDeviceName(tc.index, tc.tenant), "stable")
			assert.NotContains(t, seen, got, "also the name of %s", seen[got])
			seen[got] = name
		})
	}
	// Published through Build, a long-named tenant's slot is a valid device.
	p := tenantPolicy()
	p.Spec.Tenants[0].Name = strings.Repeat("z", 63)
	for device := range slotTenants(t, p) {
		assert.Empty(t, validation.IsDNS1123Label(device), "device name %q", device)
	}
}

// The open slot is published only when the open tenant may use the tier.
func TestTenantSlotsOpenTenant(t *testing.T) {
	tests := map[string]struct {
		open *v1alpha1.OpenTenant
		want []string
	}{
		"openTenant unset: every tier":   {want: []string{"research", "product", tslices.OpenTenant}},
		"open tenant allowed the tier":   {open: &v1alpha1.OpenTenant{AllowedTiers: []string{"dev"}}, want: []string{"research", "product", tslices.OpenTenant}},
		"open tenant allowed other tier": {open: &v1alpha1.OpenTenant{AllowedTiers: []string{"training"}}, want: []string{"research", "product"}},
		"open tenant allowed nothing":    {open: &v1alpha1.OpenTenant{}, want: []string{"research", "product"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := tenantPolicy()
			p.Spec.Tiers = append(p.Spec.Tiers, v1alpha1.Tier{Name: "training", Partitioning: v1alpha1.PartitioningWhole})
			p.Spec.OpenTenant = tc.open
			assert.Equal(t, tc.want, tslices.TenantSlots(p, "dev"))
		})
	}
}

// What admission adds to a claim of any class keeps it to its tenant's
// tiers through the scheduler's allocator: a plain-class claim, which
// reaches every tier's whole GPUs on its own, gets only devices of allowed
// tiers.
func TestAdmissionSelectorsThroughAllocator(t *testing.T) {
	// GPU 0 (H200) serves tier big, GPU 1 (L4) tier small; both whole.
	mixed := inventory.Machine{DriverVersion: "580.95.05", GPUs: []inventory.GPU{tierratest.H200(0), tierratest.L4(1)}}
	policy := func(open *v1alpha1.OpenTenant) *v1alpha1.TierPolicy {
		p := tierratest.MakePolicy().Tier("big", v1alpha1.PartitioningWhole).Products(tierratest.ProductH200).
			Tier("small", v1alpha1.PartitioningWhole).Obj()
		p.Spec.Tenants = []v1alpha1.Tenant{
			{Name: "serving", AllowedTiers: []string{"big"}},
			{Name: "notebooks", AllowedTiers: []string{"small"}},
		}
		p.Spec.OpenTenant = open
		return p
	}
	tests := map[string]struct {
		policy       *v1alpha1.TierPolicy
		tenant       string
		bypass       bool
		want         []string
		wantTierList string
	}{
		"no admission: the plain class reaches tier big": {policy: policy(nil), tenant: "notebooks", bypass: true, want: []string{"gpu-0"}},
		"a tenant allowed big":                           {policy: policy(nil), tenant: "serving", want: []string{"gpu-0"}, wantTierList: `["big"]`},
		"a tenant allowed small only":                    {policy: policy(nil), tenant: "notebooks", want: []string{"gpu-1"}, wantTierList: `["small"]`},
		"a tenant the policy does not name":              {policy: policy(nil), tenant: "ghost", wantTierList: `[]`},
		"open tenant, openTenant unset":                  {policy: policy(nil), tenant: tslices.OpenTenant, want: []string{"gpu-0"}},
		"open tenant allowed small":                      {policy: policy(&v1alpha1.OpenTenant{AllowedTiers: []string{"small"}}), tenant: tslices.OpenTenant, want: []string{"gpu-1"}, wantTierList: `["small"]`},
		"open tenant allowed nothing":                    {policy: policy(&v1alpha1.OpenTenant{}), tenant: tslices.OpenTenant, wantTierList: `[]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			claim := tierratest.MakeClaim("c", "ns").Request("gpu", tiers.ClassGPU)
			if !tc.bypass {
				sels := tslices.AdmissionSelectors(tc.policy, tc.tenant)
				want := []string{tslices.TenantSelector(tc.tenant)}
				if tc.wantTierList != "" {
					want = append(want, `!has(device.attributes["gpu.tierra.dev"].tier) || device.attributes["gpu.tierra.dev"].tier in `+tc.wantTierList)
				}
				require.Equal(t, want, sels)
				for _, s := range sels {
					claim.Selector(s)
				}
			}
			for fname, f := range featureSets {
				t.Run(fname, func(t *testing.T) {
					got, err := newCluster(t, mixed, nil, tc.policy, f).Allocate(context.Background(), nodeName, claim.Obj())
					require.NoError(t, err)
					assert.Equal(t, tc.want, got)
				})
			}
		})
	}
}
