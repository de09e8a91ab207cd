package slices_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

const nodeName = "node-a"

var trainingLabels = map[string]string{"tierra.dev/pool": "training"}

func build(t testing.TB, m inventory.Machine, labels map[string]string, policy *v1alpha1.TierPolicy, opts ...tslices.Options) []*resourceapi.ResourceSlice {
	t.Helper()
	node := tslices.Node{Name: nodeName, Labels: labels, Machine: m}
	o := tslices.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	dr, err := tslices.BuildWithOptions(node, policy, o)
	require.NoError(t, err)
	require.Len(t, dr.Pools, 1)
	require.Contains(t, dr.Pools, nodeName)
	return tslices.ResourceSlices(nodeName, dr)
}

func devices(slices []*resourceapi.ResourceSlice) []resourceapi.Device {
	var out []resourceapi.Device
	for _, s := range slices {
		out = append(out, s.Spec.Devices...)
	}
	return out
}

func names(devs []resourceapi.Device) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.Name)
	}
	return out
}

func TestBuildPublishesEachGPUOnceInItsTier(t *testing.T) {
	mixed := inventory.Machine{DriverVersion: "580.95.05", GPUs: []inventory.GPU{tierratest.H200(0), tierratest.L4(1), tierratest.H200(2, tierratest.WithMIG(true))}}
	tests := map[string]struct {
		machine   inventory.Machine
		labels    map[string]string
		policy    *v1alpha1.TierPolicy
		wantNames []string
		wantTier  map[string]string
	}{
		"training node: all whole": {
			machine: tierratest.DGXH200(false), labels: trainingLabels, policy: tierratest.StandardPolicy(),
			wantNames: []string{"gpu-0", "gpu-1", "gpu-2", "gpu-3", "gpu-4", "gpu-5", "gpu-6", "gpu-7"},
			wantTier:  map[string]string{"gpu-0": "training", "gpu-7": "training"},
		},
		"MIG tier on a GPU not in MIG mode publishes it whole": {
			machine: mixed, policy: tierratest.StandardPolicy(),
			wantNames: []string{"gpu-0", "gpu-1"},
			wantTier:  map[string]string{"gpu-0": "inference", "gpu-1": "dev"},
		},
		"GPUs matching no tier are not published": {
			machine: mixed, policy: tierratest.MakePolicy().Tier("big", v1alpha1.PartitioningWhole).MinMemory("100Gi").Obj(),
			wantNames: []string{"gpu-0", "gpu-2"},
			wantTier:  map[string]string{"gpu-0": "big", "gpu-2": "big"},
		},
		"no tier matches: one empty slice": {
			machine: mixed, policy: tierratest.MakePolicy().Tier("t", v1alpha1.PartitioningWhole).Products("none").Obj(),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			slices := build(t, tc.machine, tc.labels, tc.policy)
			require.NotEmpty(t, slices)
			devs := devices(slices)
			var plain []resourceapi.Device
			for _, d := range devs {
				if d.ConsumesCounters == nil {
					plain = append(plain, d)
				}
			}
			assert.Equal(t, tc.wantNames, names(plain))
			for _, d := range devs {
				if want, ok := tc.wantTier[d.Name]; ok {
					assert.Equal(t, want, *d.Attributes[tslices.AttrTier].StringValue, d.Name)
				}
			}
		})
	}
}

func TestWholeDeviceAttributes(t *testing.T) {
	devs := devices(build(t, tierratest.DGXH200(false), trainingLabels, tierratest.StandardPolicy()))
	require.Len(t, devs, 8)
	d := devs[5]
	str := func(n resourceapi.QualifiedName) string { return *d.Attributes[n].StringValue }
	assert.Equal(t, "gpu-5", d.Name)
	assert.Nil(t, d.AllowMultipleAllocations)
	assert.Equal(t, tierratest.H200(5).UUID, str(tslices.AttrUUID))
	assert.Equal(t, tierratest.ProductH200, str(tslices.AttrProductName))
	assert.Equal(t, "Hopper", str(tslices.AttrArchitecture))
	assert.Equal(t, "Exclusive", str(tslices.AttrSharing))
	assert.Equal(t, "Whole", str(tslices.AttrPartitioning))
	assert.Equal(t, "nvl-local", str(tslices.AttrNVLinkDomain))
	assert.Equal(t, "pci0000:50", str("resource.kubernetes.io/pcieRoot"))
	assert.Equal(t, "0000:68:00.0", str("resource.kubernetes.io/pciBusID"))
	assert.Equal(t, int64(1), *d.Attributes["resource.kubernetes.io/numaNode"].IntValue)
	assert.Equal(t, "9.0.0", *d.Attributes[tslices.AttrCUDAComputeCapability].VersionValue)
	assert.Equal(t, "580.95.5", *d.Attributes[tslices.AttrDriverVersion].VersionValue)
	assert.Equal(t, int64(3_500_000), *d.Attributes[tslices.AttrCostPerHour].IntValue)
	mem := d.Capacity[tslices.CapMemory].Value
	assert.Equal(t, int64(tierratest.H200(5).MemoryBytes), mem.Value())
}

func TestSharedDevice(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.L4(i) })
	devs := devices(build(t, m, nil, tierratest.StandardPolicy()))
	require.Len(t, devs, 1)
	d := devs[0]
	assert.Equal(t, ptr.To(true), d.AllowMultipleAllocations)
	assert.Equal(t, "TimeSlicing", *d.Attributes[tslices.AttrSharing].StringValue)
	assert.Equal(t, int64(800_000), *d.Attributes[tslices.AttrCostPerHour].IntValue)
	assert.Equal(t, int64(800), *d.Attributes[tslices.AttrCostPerComputeUnit].IntValue)
	compute := d.Capacity[tslices.CapCompute]
	assert.Equal(t, int64(1000), compute.Value.Value())
	assert.Equal(t, int64(125), compute.RequestPolicy.Default.Value())
	mem := d.Capacity[tslices.CapMemory]
	assert.Equal(t, int64(23034)<<20, mem.Value.Value(), "the L4's memory as NVML reports it")
	assert.Equal(t, int64(2879)<<20, mem.RequestPolicy.Default.Value(), "an eighth, rounded down to a MiB")
}

func TestSharedTierSharing(t *testing.T) {
	tests := map[string]struct {
		sharing     v1alpha1.SharingStrategy
		wantSharing string
		wantErr     string
	}{
		"unset: time-slicing, the API default": {wantSharing: "TimeSlicing"},
		"MPS":                                  {sharing: v1alpha1.SharingMPS, wantSharing: "MPS"},
		"Exclusive is not sharing":             {sharing: v1alpha1.SharingExclusive, wantErr: `tier "dev": Shared partitioning needs sharing`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared)
			if tc.sharing != "" {
				w = w.Sharing(tc.sharing)
			}
			policy := w.Obj()
			before := policy.DeepCopy()
			dr, err := tslices.Build(tslices.Node{Name: nodeName, Machine: tierratest.DGXH200(false)}, policy)
			assert.Equal(t, before, policy, "Build must not change the policy")
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			d := dr.Pools[nodeName].Slices[0].Devices[0]
			assert.Equal(t, tc.wantSharing, *d.Attributes[tslices.AttrSharing].StringValue)
			assert.NotContains(t, d.Attributes, resourceapi.QualifiedName(tslices.AttrCostPerHour), "no price book: no cost")
		})
	}
}

// anyGPU selects every device of the driver; the tier classes of pkg/tiers
// are tested in the conformance suite.
var anyGPU = &resourceapi.DeviceClass{
	ObjectMeta: metav1.ObjectMeta{Name: "any.gpu.tierra.dev"},
	Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{
		Expression: `device.driver == "gpu.tierra.dev"`,
	}}}},
}

func TestWholeGPUsThroughAllocator(t *testing.T) {
	for fname, features := range map[string]struct{ f bool }{"scheduler": {false}, "alpha": {true}} {
		t.Run(fname, func(t *testing.T) {
			c := tierratest.NewCluster(build(t, tierratest.DGXH200(false), trainingLabels, tierratest.StandardPolicy()), anyGPU)
			if features.f {
				c.Features = tierratest.AlphaFeatures
			}
			for i := range 8 {
				got, err := c.Allocate(context.Background(), nodeName, tierratest.MakeClaim(fmt.Sprintf("c%d", i), "ns").Request("gpu", anyGPU.Name).Obj())
				require.NoError(t, err)
				assert.Equal(t, []string{fmt.Sprintf("gpu-%d", i)}, got)
			}
			got, err := c.Allocate(context.Background(), nodeName, tierratest.MakeClaim("c8", "ns").Request("gpu", anyGPU.Name).Obj())
			require.NoError(t, err)
			assert.Nil(t, got, "a ninth whole GPU on an 8-GPU node")
		})
	}
}

func TestSharedCapacityThroughAllocator(t *testing.T) {
	share := func(name, mem string) *resourceapi.ResourceClaim {
		w := tierratest.MakeClaim(name, "ns").Request("gpu", anyGPU.Name)
		if mem != "" {
			w = w.Capacity(tslices.CapMemory, mem)
		}
		return w.Obj()
	}
	tests := map[string]struct {
		claims []*resourceapi.ResourceClaim
		want   []bool
	}{
		"three 40Gi shares fit, a fourth is refused": {
			claims: []*resourceapi.ResourceClaim{share("a", "40Gi"), share("b", "40Gi"), share("c", "40Gi"), share("d", "40Gi")},
			want:   []bool{true, true, true, false},
		},
		"full memory is the GPU to itself": {
			claims: []*resourceapi.ResourceClaim{share("a", fmt.Sprintf("%dMi", tierratest.H200(0).MemoryBytes>>20)), share("b", "")},
			want:   []bool{true, false},
		},
		"defaults: eight eighths of compute, the ninth is refused": {
			claims: []*resourceapi.ResourceClaim{share("a", ""), share("b", ""), share("c", ""), share("d", ""), share("e", ""), share("f", ""), share("g", ""), share("h", ""), share("i", "")},
			want:   []bool{true, true, true, true, true, true, true, true, false},
		},
	}
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) })
	policy := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Obj()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := tierratest.NewCluster(build(t, m, nil, policy), anyGPU)
			for i, claim := range tc.claims {
				got, err := c.Allocate(context.Background(), nodeName, claim)
				require.NoError(t, err)
				if tc.want[i] {
					assert.Equal(t, []string{"gpu-0"}, got, "claim %d", i)
				} else {
					assert.Nil(t, got, "claim %d", i)
				}
			}
		})
	}
}

func TestComputeRequest(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) })
	policy := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Obj()
	c := tierratest.NewCluster(build(t, m, nil, policy), anyGPU)
	for i, want := range []bool{true, true, true, true, false} {
		claim := tierratest.MakeClaim(fmt.Sprintf("c%d", i), "ns").Request("gpu", anyGPU.Name).Capacity(tslices.CapCompute, "250").Capacity(tslices.CapMemory, "1Gi").Obj()
		got, err := c.Allocate(context.Background(), nodeName, claim)
		require.NoError(t, err)
		assert.Equal(t, want, got != nil, "claim %d", i)
	}
	consumed := c.Allocated[0].Status.Allocation.Devices.Results[0].ConsumedCapacity
	assert.Equal(t, int64(250), ptr.To(consumed[tslices.CapCompute]).Value())
}
