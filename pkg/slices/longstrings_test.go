package slices_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

// longProductName is a product name NVML could report that is longer than
// a ResourceSlice string attribute may be (100 characters).
var longProductName = "NVIDIA H200 141GB HBM3e " + strings.Repeat("X", 100-len("NVIDIA H200 141GB HBM3e "))

// TestOverlongNVMLStringsAreShortened: a GPU whose NVML strings exceed the
// API's limit is still published, its attributes cut to the limit with
// their prefix kept, and the policy still matches it by its full name.
func TestOverlongNVMLStringsAreShortened(t *testing.T) {
	require.Len(t, longProductName, 100)
	long := func(i int, opts ...tierratest.GPUOption) inventory.GPU {
		g := tierratest.H200(i, opts...)
		g.ProductName = longProductName
		g.Architecture = strings.Repeat("Hopper", 20)
		g.NVLinkDomain = strings.Repeat("d", 80)
		return g
	}
	policy := tierratest.MakePolicy().
		Tier("inference", v1alpha1.PartitioningMIG).Products(longProductName).
		Tier("dev", v1alpha1.PartitioningShared).Price(longProductName, "3.5").Obj()
	tests := map[string]struct {
		gpu      inventory.GPU
		wantTier string
	}{
		"whole (MIG tier, MIG off)": {gpu: long(0), wantTier: "inference"},
		"MIG slices":                {gpu: long(0, tierratest.WithMIG(true)), wantTier: "inference"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			devs := devices(build(t, inventory.Machine{GPUs: []inventory.GPU{tc.gpu}}, nil, policy))
			require.NotEmpty(t, devs, "the GPU is published, not left out")
			for _, d := range devs {
				for attr, v := range d.Attributes {
					if v.StringValue != nil {
						assert.LessOrEqual(t, len(*v.StringValue), resourceapi.DeviceAttributeMaxValueLength, "%s %s", d.Name, attr)
					}
				}
				assert.Equal(t, longProductName[:resourceapi.DeviceAttributeMaxValueLength], tslices.StringAttribute(d, tslices.AttrProductName), d.Name)
				assert.Equal(t, strings.Repeat("d", resourceapi.DeviceAttributeMaxValueLength), tslices.StringAttribute(d, tslices.AttrNVLinkDomain), d.Name)
				assert.Equal(t, tc.wantTier, tslices.StringAttribute(d, tslices.AttrTier), "the tier matched the full product name")
				cost, ok := tslices.IntAttribute(d, tslices.AttrCostPerHour)
				assert.True(t, ok && cost > 0, "%s: priced by the full product name", d.Name)
			}
		})
	}
}
