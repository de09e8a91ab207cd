package slices_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cost"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

// publishAll builds each node's devices under policy and returns them as
// the ResourceSlices the apiserver would hold.
func publishAll(t *testing.T, policy *v1alpha1.TierPolicy, nodes ...tslices.Node) []*resourceapi.ResourceSlice {
	t.Helper()
	var out []*resourceapi.ResourceSlice
	for _, n := range nodes {
		dr, err := tslices.Build(n, policy)
		require.NoError(t, err)
		out = append(out, tslices.ResourceSlices(n.Name, dr)...)
	}
	return out
}

// TestIndexReadsBackPrices holds the read-back (Index, DevicePrice) to the
// prices pkg/cost computed at publish time, and a claim's cost to
// cost.Price.Allocation.
func TestIndexReadsBackPrices(t *testing.T) {
	l4s := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.L4(i) })
	nodes := []tslices.Node{
		{Name: "train", Labels: trainingLabels, Machine: tierratest.DGXH200(false)},
		{Name: "infer", Machine: tierratest.DGXH200(true)},
		{Name: "dev", Machine: l4s},
	}
	h200 := tierratest.H200(0)
	oneG, ok := h200.MIG.Profile("1g.18gb")
	require.True(t, ok)
	quarter := map[resourceapi.QualifiedName]resource.Quantity{tslices.CapCompute: resource.MustParse("250")}
	tests := map[string]struct {
		policy    *v1alpha1.TierPolicy
		key       tslices.DeviceKey
		consumed  map[resourceapi.QualifiedName]resource.Quantity
		wantPrice cost.Price
		wantCost  v1alpha1.MicroDollars
	}{
		"whole GPU": {policy: tierratest.StandardPolicy(), key: tslices.DeviceKey{Pool: "train", Device: "gpu-0"},
			wantPrice: cost.Whole(3_500_000), wantCost: 3_500_000},
		"MIG slice": {policy: tierratest.StandardPolicy(), key: tslices.DeviceKey{Pool: "infer", Device: "gpu-0-1g-18gb-0"},
			wantPrice: cost.MIG(3_500_000, oneG, h200), wantCost: 437_500},
		"share of a shared GPU": {policy: tierratest.StandardPolicy(), key: tslices.DeviceKey{Pool: "dev", Device: "gpu-0"},
			consumed: quarter, wantPrice: cost.Shared(800_000), wantCost: 200_000},
		"unpriced whole GPU": {policy: tierratest.MakePolicy().Tier("training", v1alpha1.PartitioningWhole).Obj(),
			key: tslices.DeviceKey{Pool: "train", Device: "gpu-0"}, wantPrice: cost.Price{}, wantCost: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx := tslices.Index(publishAll(t, tc.policy, nodes...))
			d, ok := idx[tc.key]
			require.True(t, ok, "%v is published", tc.key)
			assert.Equal(t, tc.wantPrice, d.Price)
			assert.Equal(t, tc.wantCost, d.Cost(tc.consumed))
		})
	}
}
