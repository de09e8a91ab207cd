package slices_test

import (
	"testing"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// capacityMIGModel is the capacity-based MIG shape, built for the benchmark
// only to measure what it would buy: one device per GPU with
// allowMultipleAllocations and consumable memorySlices (8) and
// computeSlices (7). It is NOT placement-exact — 1g at 6 then 1g, 1g, 1g,
// 3g passes the sums and cannot be placed — so publishing it needs the
// driver to verify a placement before binding (binding conditions), and its
// fit count is an upper bound.
func capacityMIGModel(b *testing.B, policy *v1alpha1.TierPolicy, classes []*resourceapi.DeviceClass) benchModel {
	shared := tierraModel(b, policy, tierratest.DGXH200(false), tslices.Options{})
	one := resource.NewQuantity(1, resource.DecimalSI)
	capacity := func(v int64) resourceapi.DeviceCapacity {
		return resourceapi.DeviceCapacity{
			Value: *resource.NewQuantity(v, resource.DecimalSI),
			RequestPolicy: &resourceapi.CapacityRequestPolicy{
				Default: one, ValidRange: &resourceapi.CapacityRequestPolicyRange{Min: one, Step: one},
			},
		}
	}
	return benchModel{
		slices: func(node string) []*resourceapi.ResourceSlice {
			out := shared(node)
			for _, s := range out {
				for i := range s.Spec.Devices {
					s.Spec.Devices[i].Capacity = map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
						"gpu.tierra.dev/memorySlices": capacity(8), "gpu.tierra.dev/computeSlices": capacity(7),
					}
				}
			}
			return out
		},
		classes: classes,
		units:   func(k kind) int { return kindUnits[k] },
		claim: func(k kind, name string) *resourceapi.ResourceClaim {
			mem := [...]string{"1", "2", "4", "8"}[k]
			compute := [...]string{"1", "2", "3", "7"}[k]
			return tierratest.MakeClaim(name, "bench").Request("gpu", tiers.ClassName("t")).
				Capacity("gpu.tierra.dev/memorySlices", mem).Capacity("gpu.tierra.dev/computeSlices", compute).Obj()
		},
	}
}
