package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

func nodes() []slices.Node {
	return []slices.Node{
		{Name: "train", Labels: map[string]string{"tierra.dev/pool": "training"}, Machine: tierratest.DGXH200(false)},
		{Name: "infer", Machine: tierratest.DGXH200(true)},
		{Name: "dev", Machine: tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i) })},
	}
}

func TestRunPlacesEachTierOnItsNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	claims := []*resourceapi.ResourceClaim{
		tierratest.MakeClaim("train", "research").Request("gpus", "training.gpu.tierra.dev").Count(4).
			MatchAttribute(slices.AttrNVLinkDomain).Obj(),
		tierratest.MakeClaim("infer", "product").FirstAvailable("gpu",
			tierratest.Sub("small", "inference.gpu.tierra.dev", `device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`),
			tierratest.Sub("whole", "gpu.tierra.dev")).Obj(),
		tierratest.MakeClaim("dev", "research").Request("gpu", "dev.gpu.tierra.dev").
			Capacity(slices.CapCompute, "250").Obj(),
		tierratest.MakeClaim("huge", "research").Request("gpus", "training.gpu.tierra.dev").Count(9).Obj(),
	}
	res, err := Run(ctx, Input{Nodes: nodes(), Policy: tierratest.StandardPolicy(), Claims: claims})
	require.NoError(t, err)
	require.Len(t, res.Placements, 4)

	train := res.Placements[0]
	assert.Equal(t, "train", train.Node)
	assert.Len(t, train.Devices, 4)
	assert.Equal(t, []string{"training"}, train.Tiers)
	assert.Equal(t, v1alpha1.MicroDollars(4*3_500_000), train.Cost)
	assert.InDelta(t, 4.0, train.GPUs, 1e-9)

	infer := res.Placements[1]
	assert.Equal(t, "infer", infer.Node)
	assert.Equal(t, []string{"inference.gpu.tierra.dev"}, infer.Classes)
	assert.Equal(t, v1alpha1.MicroDollars(3_500_000/8), infer.Cost, "a 1g slice is one of eight memory slices")
	assert.InDelta(t, 1.0/8, infer.GPUs, 1e-9)

	dev := res.Placements[2]
	assert.Equal(t, "dev", dev.Node)
	assert.Equal(t, v1alpha1.MicroDollars(250*800), dev.Cost, "a quarter of an L4 at $0.80")
	assert.InDelta(t, 0.25, dev.GPUs, 1e-9)

	assert.Empty(t, res.Placements[3].Node, "nine GPUs fit on no node")
	require.Len(t, res.Nodes, 3)
	assert.InDelta(t, 4.0, res.Nodes[0].Allocated, 1e-9)
	assert.Positive(t, res.Devices)
}

func TestRunRejectsAnInvalidPolicy(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	policy := tierratest.StandardPolicy()
	policy.Spec.Tiers[0].Partitioning = "Halves"
	_, err := Run(ctx, Input{Nodes: nodes(), Policy: policy})
	require.ErrorContains(t, err, "spec.tiers[0].partitioning")
}
