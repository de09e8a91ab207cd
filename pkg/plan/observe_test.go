package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Observe reads claims the scheduler allocated (here the same allocator,
// offline) and prices them as Run prices its own placements.
func TestObserveDescribesAllocatedClaims(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	policy := tierratest.StandardPolicy()
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	var published []*resourceapi.ResourceSlice
	for _, n := range nodes() {
		dr, err := slices.Build(n, policy)
		require.NoError(t, err)
		published = append(published, slices.ResourceSlices(n.Name, dr)...)
	}
	c := allocator.NewCluster(published, classes...)
	train := tierratest.MakeClaim("train", "research").Request("gpus", "training.gpu.tierra.dev").Count(4).Obj()
	alloc, err := c.Try(ctx, "train", train)
	require.NoError(t, err)
	require.NotNil(t, alloc)
	train.Status.Allocation = alloc
	dev := tierratest.MakeClaim("dev", "research").Request("gpu", "dev.gpu.tierra.dev").Capacity(slices.CapCompute, "250").Obj()
	alloc, err = c.Try(ctx, "dev", dev)
	require.NoError(t, err)
	require.NotNil(t, alloc)
	dev.Status.Allocation = alloc
	pending := tierratest.MakeClaim("pending", "research").Request("gpu", "training.gpu.tierra.dev").Obj()

	res := Observe([]string{"train", "infer", "dev"}, published, []*resourceapi.ResourceClaim{train, dev, pending})
	require.Len(t, res.Placements, 3)
	assert.Equal(t, "train", res.Placements[0].Node)
	assert.Equal(t, []string{"training"}, res.Placements[0].Tiers)
	assert.Equal(t, v1alpha1.MicroDollars(4*3_500_000), res.Placements[0].Cost)
	assert.Equal(t, v1alpha1.MicroDollars(250*800), res.Placements[1].Cost)
	assert.InDelta(t, 0.25, res.Placements[1].GPUs, 1e-9)
	assert.Empty(t, res.Placements[2].Node, "an unallocated claim has no node")
	require.Len(t, res.Nodes, 3)
	assert.Equal(t, []int{8, 8, 4}, []int{res.Nodes[0].GPUs, res.Nodes[1].GPUs, res.Nodes[2].GPUs},
		"a node's GPUs are the physical GPUs its slices publish (MIG slices of one GPU count once)")
	assert.InDelta(t, 4.0, res.Nodes[0].Allocated, 1e-9)
	assert.InDelta(t, 0.25, res.Nodes[2].Allocated, 1e-9)
	assert.Positive(t, res.Devices)
}
