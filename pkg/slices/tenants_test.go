package slices_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	tt "github.com/tierra-gpu/tierra/pkg/testing"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// tenantPolicy: a time-sliced dev tier that tenants research and product
// may both use.
func tenantPolicy() *v1alpha1.TierPolicy {
	p := tt.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingTimeSlicing).Obj()
	for _, name := range []string{"research", "product"} {
		p.Spec.Tenants = append(p.Spec.Tenants, v1alpha1.Tenant{Name: name, AllowedTiers: []string{"dev"}})
	}
	return p
}

// tenantClaim is a dev claim with the selector the tenancy admission policy
// adds for the namespace's tenant.
func tenantClaim(name, tenant string) *resourceapi.ResourceClaim {
	return tt.MakeClaim(name, "ns").Request("gpu", tiers.ClassName("dev")).
		Capacity(tslices.CapCompute, "250").Selector(tslices.TenantSelector(tenant)).Obj()
}

func TestTenantSlotsPublished(t *testing.T) {
	rs := build(t, tt.Machine(2, func(i int) inventory.GPU { return tt.L4(i) }), nil, tenantPolicy())
	assert.Equal(t, []string{"gpu-0-tenant-0", "gpu-0-tenant-1", "gpu-0-open", "gpu-1-tenant-0", "gpu-1-tenant-1", "gpu-1-open"},
		names(devices(rs)))
	for _, d := range devices(rs) {
		require.Len(t, d.ConsumesCounters, 1, d.Name)
		assert.True(t, *d.AllowMultipleAllocations, d.Name)
		assert.Contains(t, d.Attributes, resourceapi.QualifiedName(tslices.AttrUUID), "prepare finds the GPU by uuid")
	}
	assert.Equal(t, []string{"research", "product", ""}, tslices.TenantSlots(tenantPolicy(), "dev"))
	assert.Nil(t, tslices.TenantSlots(tt.StandardPolicy(), "dev"), "no tenants: one shared device per GPU")
}

// The scheduler's allocator itself keeps tenants apart: one tenant's claims
// share a GPU, another tenant's claims go to the next GPU, and a GPU another
// tenant left is free again.
func TestTenantSlotsKeepTenantsApart(t *testing.T) {
	l4s := tt.Machine(3, func(i int) inventory.GPU { return tt.L4(i) })
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			ctx := context.Background()
			c := newCluster(t, l4s, nil, tenantPolicy(), f)
			alloc := func(claim *resourceapi.ResourceClaim) []string {
				got, err := c.Allocate(ctx, nodeName, claim)
				require.NoError(t, err)
				return got
			}
			assert.Equal(t, []string{"gpu-0-tenant-0"}, alloc(tenantClaim("r1", "research")))
			assert.Equal(t, []string{"gpu-0-tenant-0"}, alloc(tenantClaim("r2", "research")), "one tenant shares")
			assert.Equal(t, []string{"gpu-1-tenant-1"}, alloc(tenantClaim("p1", "product")), "never beside research")
			assert.Equal(t, []string{"gpu-2-open"}, alloc(tenantClaim("o1", tslices.OpenTenant)))
			assert.Nil(t, alloc(tenantClaim("p2", "nobody")), "a tenant with no slot gets nothing")
			for i := range 2 {
				assert.Equal(t, []string{"gpu-1-tenant-1"}, alloc(tenantClaim(fmt.Sprintf("p%d", i+3), "product")))
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
			assert.Equal(t, []string{"gpu-0-tenant-1"}, got, "the GPU research left")
		})
	}
}
