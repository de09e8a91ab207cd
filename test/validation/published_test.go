package validation

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func migMachine(n int, gpu func(int, ...tierratest.GPUOption) inventory.GPU) inventory.Machine {
	return tierratest.Machine(n, func(i int) inventory.GPU { return gpu(i, tierratest.WithMIG(true)) })
}

func policies() map[string]*v1alpha1.TierPolicy {
	return map[string]*v1alpha1.TierPolicy{
		"standard": tierratest.StandardPolicy(),
		"default":  v1alpha1.DefaultTierPolicy(),
		"by product": tierratest.MakePolicy().
			Tier("training", v1alpha1.PartitioningWhole).Products(tierratest.ProductB200).
			Tier("inference", v1alpha1.PartitioningMIG).Products(tierratest.ProductH200, tierratest.ProductA100).
			Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).
			DefaultPrice("2.5").Obj(),
		"all MIG":            tierratest.MakePolicy().Tier("inference", v1alpha1.PartitioningMIG).DefaultPrice("4").Obj(),
		"extended resources": extendedPolicy(),
	}
}

func TestPublishedSlicesPassAPIServerValidation(t *testing.T) {
	machines := map[string]inventory.Machine{
		"whole DGX H200":  tierratest.DGXH200(false),
		"MIG DGX H200":    tierratest.DGXH200(true),
		"MIG 8x A100":     migMachine(8, tierratest.A100),
		"MIG 8x B200":     migMachine(8, tierratest.B200),
		"MIG 16x H200":    migMachine(16, tierratest.H200),
		"shared 4x L4":    tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i, tierratest.WithNUMA(-1)) }),
		"mixed":           {DriverVersion: "580.95.05", GPUs: []inventory.GPU{tierratest.B200(0), tierratest.H200(1, tierratest.WithMIG(true)), tierratest.L4(2), tierratest.A100(3, tierratest.WithMIG(true)), tierratest.H200(4)}},
		"no GPUs":         {},
		"training labels": tierratest.DGXH200(true),
		"one GPU, no NVLink": tierratest.Machine(1, func(i int) inventory.GPU {
			return tierratest.H200(i, tierratest.WithNVLink(""), tierratest.WithMIG(true))
		}),
	}
	opts := map[string]slices.Options{"default": {}, "media extensions": {MediaExtensions: true}}
	checked := 0
	for mname, m := range machines {
		for pname, policy := range policies() {
			for oname, o := range opts {
				labels := map[string]string{}
				if mname == "training labels" {
					labels["tierra.dev/pool"] = "training"
				}
				node := slices.Node{Name: "gpu-node-1", Labels: labels, Machine: m}
				dr, err := slices.BuildWithOptions(node, policy, o)
				require.NoError(t, err, "%s / %s / %s", mname, pname, oname)
				for _, s := range slices.ResourceSlices(node.Name, dr) {
					errs := validateSlice(t, s)
					assert.Empty(t, errs, "%s / %s / %s: slice %s", mname, pname, oname, s.Name)
					checked++
				}
			}
		}
	}
	t.Logf("%d ResourceSlices validated", checked)
}

func TestRenderedClassesPassAPIServerValidation(t *testing.T) {
	for name, policy := range policies() {
		t.Run(name, func(t *testing.T) {
			classes, err := tiers.Render(policy)
			require.NoError(t, err)
			require.NotEmpty(t, classes)
			for _, c := range classes {
				assert.Empty(t, validateClass(t, c), c.Name)
			}
		})
	}
}

// TestValidatorIsLive proves the checks above can fail: the same path
// rejects slices just over the API's limits.
func TestValidatorIsLive(t *testing.T) {
	dr, err := slices.Build(slices.Node{Name: "n", Machine: migMachine(8, tierratest.H200)}, tierratest.StandardPolicy())
	require.NoError(t, err)
	published := slices.ResourceSlices("n", dr)
	var counterSlice, deviceSlice *resourcev1.ResourceSlice
	for _, s := range published {
		if len(s.Spec.SharedCounters) > 0 && counterSlice == nil {
			counterSlice = s.DeepCopy()
		}
		if len(s.Spec.Devices) > 0 && deviceSlice == nil {
			deviceSlice = s.DeepCopy()
		}
	}
	require.NotNil(t, counterSlice)
	require.NotNil(t, deviceSlice)
	require.Empty(t, validateSlice(t, deviceSlice), "baseline must be valid")

	tests := map[string]struct {
		slice   *resourcev1.ResourceSlice
		mutate  func(s *resourcev1.ResourceSlice)
		wantErr string
	}{
		"65 devices consuming counters": {slice: deviceSlice, wantErr: "spec.devices", mutate: func(s *resourcev1.ResourceSlice) {
			for i := len(s.Spec.Devices); i <= resourcev1.ResourceSliceMaxDevicesWithAdvancedFeatures; i++ {
				d := s.Spec.Devices[0].DeepCopy()
				d.Name = fmt.Sprintf("extra-%d", i)
				s.Spec.Devices = append(s.Spec.Devices, *d)
			}
		}},
		"9 counter sets": {slice: counterSlice, wantErr: "spec.sharedCounters", mutate: func(s *resourcev1.ResourceSlice) {
			for i := len(s.Spec.SharedCounters); i <= resourcev1.ResourceSliceMaxCounterSets; i++ {
				cs := s.Spec.SharedCounters[0].DeepCopy()
				cs.Name = fmt.Sprintf("extra-%d", i)
				s.Spec.SharedCounters = append(s.Spec.SharedCounters, *cs)
			}
		}},
		"profile name as device name": {slice: deviceSlice, wantErr: "spec.devices[0].name", mutate: func(s *resourcev1.ResourceSlice) {
			s.Spec.Devices[0].Name = "1g.18gb+me"
		}},
		"counters and devices in one slice": {slice: deviceSlice, wantErr: "spec", mutate: func(s *resourcev1.ResourceSlice) {
			s.Spec.SharedCounters = counterSlice.Spec.SharedCounters[:1]
		}},
		"33 attributes and capacities": {slice: deviceSlice, wantErr: "spec.devices[0]", mutate: func(s *resourcev1.ResourceSlice) {
			d := &s.Spec.Devices[0]
			for i := len(d.Attributes) + len(d.Capacity); i <= resourcev1.ResourceSliceMaxAttributesAndCapacitiesPerDevice; i++ {
				d.Attributes[resourcev1.QualifiedName(fmt.Sprintf("gpu.tierra.dev/extra%d", i))] = resourcev1.DeviceAttribute{BoolValue: ptr.To(true)}
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := tc.slice.DeepCopy()
			tc.mutate(s)
			errs := validateSlice(t, s)
			require.NotEmpty(t, errs)
			assert.Contains(t, errs.ToAggregate().Error(), tc.wantErr)
		})
	}
}
