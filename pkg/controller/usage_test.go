package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Yield is GPU capacity, not device counts: a MIG node publishes a device
// per profile and placement, and a 3g slice is half its GPU's memory.
func TestTierUsagesCountGPUCapacity(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	policy := tierratest.StandardPolicy()
	nodes := []slices.Node{
		{Name: "infer", Machine: tierratest.DGXH200(true)},
		{Name: "dev", Machine: tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i) })},
	}
	var rs []*resourceapi.ResourceSlice
	for _, n := range nodes {
		dr, err := slices.Build(n, policy)
		require.NoError(t, err)
		rs = append(rs, slices.ResourceSlices(n.Name, dr)...)
	}
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	c := allocator.NewCluster(rs, classes...)
	claims := []*resourceapi.ResourceClaim{
		tierratest.MakeClaim("big", "p").Request("gpu", "inference.gpu.tierra.dev").
			Selector(`device.attributes["gpu.tierra.dev"].migProfile.startsWith("3g.")`).Obj(),
		tierratest.MakeClaim("small", "p").Request("gpu", "inference.gpu.tierra.dev").
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj(),
		tierratest.MakeClaim("share", "p").Request("gpu", "dev.gpu.tierra.dev").Capacity(slices.CapCompute, "250").Obj(),
	}
	for i, claim := range claims {
		node := "infer"
		if i == 2 {
			node = "dev"
		}
		alloc, err := c.Try(ctx, node, claim)
		require.NoError(t, err)
		require.NotNil(t, alloc, claim.Name)
		claim.Status.Allocation = alloc
		c.Record(claim, alloc)
	}
	usage := TierUsages(rs, claims)
	infer := usage["inference"]
	require.NotNil(t, infer)
	assert.Equal(t, int32(8), infer.GPUs, "eight MIG GPUs, however many devices they publish")
	assert.Greater(t, infer.DevicesPublished, int32(100))
	assert.Equal(t, int32(2), infer.DevicesAllocated)
	assert.Equal(t, int64(500+125), infer.AllocatedMilliGPUs, "3g = 4 of 8 memory slices, 1g = 1 of 8")
	assert.Equal(t, int32(7), infer.YieldPercent())
	dev := usage["dev"]
	require.NotNil(t, dev)
	assert.Equal(t, int32(4), dev.GPUs)
	assert.Equal(t, int64(250), dev.AllocatedMilliGPUs, "a share counts its compute")
	assert.Equal(t, int32(6), dev.YieldPercent())
}
