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
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// byProduct gives each tier its own product so every tier has devices on
// one node: B200 whole (training), H200 MIG (inference), L4 shared (dev).
func byProduct() *v1alpha1.TierPolicy {
	return tierratest.MakePolicy().
		Tier("training", v1alpha1.PartitioningWhole).Products(tierratest.ProductB200).
		Tier("inference", v1alpha1.PartitioningMIG).Products(tierratest.ProductH200).
		Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Products(tierratest.ProductL4).
		DefaultPrice("1").Obj()
}

func mixedNode() inventory.Machine {
	return inventory.Machine{GPUs: []inventory.GPU{
		tierratest.B200(0), tierratest.H200(1, tierratest.WithMIG(true)), tierratest.L4(2), tierratest.B200(3), tierratest.L4(4),
	}}
}

// TestClassesNeverCrossTiers allocates from each class until it is refused
// and checks every device it got.
func TestClassesNeverCrossTiers(t *testing.T) {
	tests := map[string]struct {
		class    string
		check    func(t *testing.T, d resourceapi.Device)
		wantMany int
	}{
		"training":  {class: tiers.ClassName("training"), wantMany: 2, check: tierIs("training")},
		"inference": {class: tiers.ClassName("inference"), wantMany: 7, check: tierIs("inference")},
		// Default shares are an eighth: 8 per L4.
		"dev": {class: tiers.ClassName("dev"), wantMany: 16, check: tierIs("dev")},
		"gpu.tierra.dev: whole exclusive GPUs only": {class: tiers.ClassGPU, wantMany: 2, check: func(t *testing.T, d resourceapi.Device) {
			assert.Equal(t, "Exclusive", *d.Attributes[tslices.AttrSharing].StringValue)
			assert.NotContains(t, d.Attributes, resourceapi.QualifiedName(tslices.AttrMIGProfile))
		}},
		"mig.gpu.tierra.dev: MIG slices only": {class: tiers.ClassMIG, wantMany: 7, check: func(t *testing.T, d resourceapi.Device) {
			assert.Contains(t, d.Attributes, resourceapi.QualifiedName(tslices.AttrMIGProfile))
		}},
	}
	for name, tc := range tests {
		for fname, f := range featureSets {
			t.Run(name+"/"+fname, func(t *testing.T) {
				c := newCluster(t, mixedNode(), nil, byProduct(), f)
				byName := map[string]resourceapi.Device{}
				for _, d := range devices(c.Slices) {
					byName[d.Name] = d
				}
				n := 0
				for ; n < 100; n++ {
					got, err := c.Allocate(context.Background(), nodeName, tierratest.MakeClaim(fmt.Sprintf("c%d", n), "ns").Request("gpu", tc.class).Obj())
					require.NoError(t, err)
					if got == nil {
						break
					}
					require.Len(t, got, 1)
					tc.check(t, byName[got[0]])
				}
				assert.Equal(t, tc.wantMany, n, "claims allocated before the first refusal")
			})
		}
	}
}

func tierIs(tier string) func(t *testing.T, d resourceapi.Device) {
	return func(t *testing.T, d resourceapi.Device) {
		assert.Equal(t, tier, *d.Attributes[tslices.AttrTier].StringValue, d.Name)
	}
}

// TestSlicesRespectAPILimits checks the limits the apiserver enforces; the
// test/validation module runs the apiserver's own validation on top.
func TestSlicesRespectAPILimits(t *testing.T) {
	big := tierratest.Machine(16, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	tests := map[string]struct {
		machine inventory.Machine
		opts    tslices.Options
	}{
		"16 H200 MIG with +me": {machine: big, opts: tslices.Options{MediaExtensions: true}},
		"8 A100 MIG":           {machine: tierratest.Machine(8, func(i int) inventory.GPU { return tierratest.A100(i, tierratest.WithMIG(true)) })},
		"mixed":                {machine: mixedNode()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			slices := build(t, tc.machine, nil, byProduct(), tc.opts)
			for _, s := range slices {
				assert.False(t, len(s.Spec.Devices) > 0 && len(s.Spec.SharedCounters) > 0, "devices and counters in one slice")
				assert.LessOrEqual(t, len(s.Spec.SharedCounters), resourceapi.ResourceSliceMaxCounterSets)
				limit := resourceapi.ResourceSliceMaxDevices
				for _, d := range s.Spec.Devices {
					if len(d.ConsumesCounters) > 0 {
						limit = resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures
					}
					assert.LessOrEqual(t, len(d.Attributes)+len(d.Capacity), resourceapi.ResourceSliceMaxAttributesAndCapacitiesPerDevice)
					assert.LessOrEqual(t, len(d.ConsumesCounters), resourceapi.ResourceSliceMaxDeviceCounterConsumptionsPerDevice)
				}
				assert.LessOrEqual(t, len(s.Spec.Devices), limit)
			}
		})
	}
}
