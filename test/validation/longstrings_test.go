package validation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

// TestOverlongNVMLStringsPassAPIServerValidation: a GPU whose NVML product
// name is 100 characters is published in slices the apiserver accepts, and
// the same slice with the name restored is refused (the check is live).
func TestOverlongNVMLStringsPassAPIServerValidation(t *testing.T) {
	product := "NVIDIA H200 141GB HBM3e " + strings.Repeat("X", 76)
	require.Len(t, product, 100)
	machines := map[string]inventory.Machine{
		"whole": tierratest.Machine(2, func(i int) inventory.GPU { g := tierratest.H200(i); g.ProductName = product; return g }),
		"MIG": tierratest.Machine(2, func(i int) inventory.GPU {
			g := tierratest.H200(i, tierratest.WithMIG(true))
			g.ProductName = product
			return g
		}),
		"shared": tierratest.Machine(2, func(i int) inventory.GPU {
			g := tierratest.L4(i)
			g.ProductName = product
			return g
		}),
	}
	for name, m := range machines {
		t.Run(name, func(t *testing.T) {
			dr, err := slices.Build(slices.Node{Name: "n", Machine: m}, tierratest.StandardPolicy())
			require.NoError(t, err)
			var withDevices *resourcev1.ResourceSlice
			for _, s := range slices.ResourceSlices("n", dr) {
				assert.Empty(t, validateSlice(t, s), "slice %s", s.Name)
				if len(s.Spec.Devices) > 0 && withDevices == nil {
					withDevices = s.DeepCopy()
				}
			}
			require.NotNil(t, withDevices, "the GPUs are published")
			d := &withDevices.Spec.Devices[0]
			d.Attributes[slices.AttrProductName] = resourcev1.DeviceAttribute{StringValue: ptr.To(product)}
			errs := validateSlice(t, withDevices)
			require.NotEmpty(t, errs, "the untruncated name is over the API's limit")
			assert.Contains(t, errs.ToAggregate().Error(), "productName")
		})
	}
}
