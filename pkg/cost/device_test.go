package cost

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

func TestDevicePrices(t *testing.T) {
	h200 := tierratest.H200(0)
	profile := func(name string) inventory.MIGProfile {
		p, ok := h200.MIG.Profile(name)
		require.True(t, ok, "H200 has profile %s", name)
		return p
	}
	const h200Price = v1alpha1.MicroDollars(3_500_000)
	tests := map[string]struct {
		got  Price
		want Price
	}{
		"whole GPU":            {got: Whole(h200Price), want: Price{PerHour: 3_500_000}},
		"whole GPU, zero":      {got: Whole(0), want: Price{}},
		"shared GPU":           {got: Shared(h200Price), want: Price{PerHour: 3_500_000, PerComputeUnit: 3_500, ByComputeUnit: true}},
		"shared, unit rounded": {got: Shared(1_999), want: Price{PerHour: 1_999, PerComputeUnit: 1, ByComputeUnit: true}},
		"shared, zero":         {got: Shared(0), want: Price{ByComputeUnit: true}},
		"MIG 1g by one slice":  {got: MIG(h200Price, profile("1g.18gb"), h200), want: Price{PerHour: 437_500}},
		"MIG 1g.35gb by two slices, as 2g": {
			got: MIG(h200Price, profile("1g.35gb"), h200), want: MIG(h200Price, profile("2g.35gb"), h200),
		},
		"MIG 3g by four slices": {got: MIG(h200Price, profile("3g.71gb"), h200), want: Price{PerHour: 1_750_000}},
		"MIG 7g is the GPU":     {got: MIG(h200Price, profile("7g.141gb"), h200), want: Whole(h200Price)},
		"MIG rounds down":       {got: MIG(7, profile("1g.18gb"), h200), want: Price{PerHour: 0}},
		"MIG without geometry":  {got: MIG(h200Price, profile("1g.18gb"), inventory.GPU{}), want: Price{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got)
		})
	}
}

func TestAllocation(t *testing.T) {
	tests := map[string]struct {
		price        Price
		computeUnits int64
		want         v1alpha1.MicroDollars
	}{
		"whole device pays its price":        {price: Whole(3_500_000), want: 3_500_000},
		"whole device ignores compute":       {price: Whole(3_500_000), computeUnits: 125, want: 3_500_000},
		"MIG slice pays its pro-rated price": {price: Price{PerHour: 437_500}, want: 437_500},
		"share pays its compute":             {price: Shared(800_000), computeUnits: 250, want: 200_000},
		"all of a share is the GPU":          {price: Shared(800_000), computeUnits: ComputeUnitsPerGPU, want: 800_000},
		"share without compute is free":      {price: Shared(800_000), want: 0},
		"unpriced whole device":              {price: Price{}, want: 0},
		"unpriced share":                     {price: Price{ByComputeUnit: true}, computeUnits: 500, want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.price.Allocation(tc.computeUnits))
		})
	}
}
