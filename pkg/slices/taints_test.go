package slices_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

func buildResources(t *testing.T, m inventory.Machine, labels map[string]string, policy *v1alpha1.TierPolicy) resourceslice.DriverResources {
	t.Helper()
	dr, err := tslices.Build(tslices.Node{Name: nodeName, Labels: labels, Machine: m}, policy)
	require.NoError(t, err)
	return dr
}

// taintedNames lists the devices that carry the reshaping taint.
func taintedNames(dr resourceslice.DriverResources) []string {
	var out []string
	for _, s := range dr.Pools[nodeName].Slices {
		for _, d := range s.Devices {
			for _, taint := range d.Taints {
				if taint.Key == tslices.ReshapingTaintKey {
					out = append(out, d.Name)
				}
			}
		}
	}
	return out
}

func TestTaintMarksEveryDeviceOfTheGPUs(t *testing.T) {
	h200s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i) })
	migH200s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	l4s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) })
	tests := map[string]struct {
		machine inventory.Machine
		labels  map[string]string
		policy  *v1alpha1.TierPolicy
		gpus    []int
		want    []string
	}{
		"whole GPU by uuid": {
			machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy(), gpus: []int{1},
			want: []string{"gpu-1"},
		},
		"shared GPU by uuid": {
			machine: l4s, policy: tierratest.StandardPolicy(), gpus: []int{0},
			want: []string{"gpu-0"},
		},
		"tenant slots by uuid": {
			machine: l4s, policy: tenantPolicy(), gpus: []int{1},
			want: deviceNames(build(t, l4s, nil, tenantPolicy()), tslices.AttrUUID, l4s.GPUs[1].UUID),
		},
		"MIG devices by parentUUID": {
			machine: migH200s, policy: tierratest.StandardPolicy(), gpus: []int{0},
			want: deviceNames(build(t, migH200s, nil, tierratest.StandardPolicy()), tslices.AttrParentUUID, migH200s.GPUs[0].UUID),
		},
		"no GPU": {machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dr := buildResources(t, tc.machine, tc.labels, tc.policy)
			gpus := sets.New[string]()
			for _, i := range tc.gpus {
				gpus.Insert(tc.machine.GPUs[i].UUID)
			}
			got := tslices.Taint(dr, gpus, tslices.ReshapingTaint())
			assert.Equal(t, tc.want, taintedNames(got))
			assert.Empty(t, taintedNames(dr), "the input is not changed")
			assert.Equal(t, names(devices(tslices.ResourceSlices(nodeName, dr))), names(devices(tslices.ResourceSlices(nodeName, got))),
				"same devices in the same (first-fit) order")
		})
	}
}

func TestTaintReplacesItsOwnKeyOnly(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) })
	dr := buildResources(t, m, trainingLabels, tierratest.StandardPolicy())
	health := resourceapi.DeviceTaint{Key: "gpu.tierra.dev/xid", Value: "79", Effect: resourceapi.DeviceTaintEffectNoExecute}
	old := resourceapi.DeviceTaint{Key: tslices.ReshapingTaintKey, Value: "old", Effect: resourceapi.DeviceTaintEffectNone}
	dr.Pools[nodeName].Slices[0].Devices[0].Taints = []resourceapi.DeviceTaint{health, old}

	got := tslices.Taint(dr, sets.New(m.GPUs[0].UUID), tslices.ReshapingTaint())
	assert.Equal(t, []resourceapi.DeviceTaint{health, tslices.ReshapingTaint()}, got.Pools[nodeName].Slices[0].Devices[0].Taints)
	assert.Equal(t, []resourceapi.DeviceTaint{health, old}, dr.Pools[nodeName].Slices[0].Devices[0].Taints, "the input is not changed")
}

// A slice of more than 64 devices may not carry a taint: tainting one of
// them splits it, keeping the order.
func TestTaintSplitsASliceOverTheTaintLimit(t *testing.T) {
	m := tierratest.Machine(100, func(i int) inventory.GPU { return tierratest.H200(i) })
	dr := buildResources(t, m, trainingLabels, tierratest.StandardPolicy())
	require.Len(t, dr.Pools[nodeName].Slices, 1)
	require.Len(t, dr.Pools[nodeName].Slices[0].Devices, 100)

	got := tslices.Taint(dr, sets.New(m.GPUs[70].UUID), tslices.ReshapingTaint())
	parts := got.Pools[nodeName].Slices
	require.Len(t, parts, 2)
	assert.Len(t, parts[0].Devices, resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures)
	assert.Len(t, parts[1].Devices, 100-resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures)
	assert.Equal(t, []string{"gpu-70"}, taintedNames(got))
	assert.Equal(t, names(devices(tslices.ResourceSlices(nodeName, dr))), names(devices(tslices.ResourceSlices(nodeName, got))))
	assert.Len(t, tslices.Taint(dr, sets.New("no-such-gpu"), tslices.ReshapingTaint()).Pools[nodeName].Slices, 1,
		"a slice without a tainted device stays whole")
}

// deviceNames are the names of the devices whose attribute attr is value,
// in published order.
func deviceNames(rs []*resourceapi.ResourceSlice, attr resourceapi.QualifiedName, value string) []string {
	var out []string
	for _, d := range devices(rs) {
		if tslices.StringAttribute(d, attr) == value {
			out = append(out, d.Name)
		}
	}
	return out
}

// slotName is the name of the tenant's slot on the GPU.
func slotName(t *testing.T, rs []*resourceapi.ResourceSlice, uuid, tenant string) string {
	t.Helper()
	for _, d := range devices(rs) {
		if tslices.StringAttribute(d, tslices.AttrUUID) == uuid && d.Attributes[tslices.AttrTenant].StringValue != nil &&
			tslices.StringAttribute(d, tslices.AttrTenant) == tenant {
			return d.Name
		}
	}
	require.Failf(t, "no slot", "tenant %q on GPU %s", tenant, uuid)
	return ""
}

func held(device string, mode tenancy.Mode, strategy, tenant string) tslices.Held {
	return tslices.Held{Pool: nodeName, Device: device, Use: tenancy.Use{Claim: "ns/c", Tenant: tenant, Mode: mode, Strategy: strategy}}
}

func TestReshapingFindsHeldDevicesTheShapeNoLongerPublishes(t *testing.T) {
	l4s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) })
	h200s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i) })
	migH200s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	slots := build(t, l4s, nil, tenantPolicy())
	research := slotName(t, slots, l4s.GPUs[0].UUID, "research")
	mps := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Obj()
	timeSliced := func(device, tenant string) tslices.Held {
		return held(device, tenancy.ModeShared, string(v1alpha1.SharingTimeSlicing), tenant)
	}
	tests := map[string]struct {
		machine   inventory.Machine
		labels    map[string]string
		policy    *v1alpha1.TierPolicy
		held      tslices.Held
		heldOnGPU int
		reshaping bool
	}{
		"tenant slot still published": {
			machine: l4s, policy: tenantPolicy(), held: timeSliced(research, "research"),
		},
		"open slot still published": {
			machine: l4s, policy: tenantPolicy(), held: timeSliced(slotName(t, slots, l4s.GPUs[1].UUID, tenancy.Open), tenancy.Open),
			heldOnGPU: 1,
		},
		"tenant slot, GPU now whole": {
			machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy(), held: timeSliced(research, "research"),
			reshaping: true,
		},
		"tenant slot now another tenant's": {
			machine: l4s, policy: tenantPolicy(), held: timeSliced(research, "product"), reshaping: true,
		},
		"shared GPU, same name, now whole": {
			machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy(), held: timeSliced("gpu-0", tenancy.Open),
			reshaping: true,
		},
		"shared GPU, same name, now MPS": {
			machine: l4s, policy: mps, held: timeSliced("gpu-0", tenancy.Open), reshaping: true,
		},
		"whole GPU, now shared": {
			machine: l4s, policy: tierratest.StandardPolicy(), held: held("gpu-0", tenancy.ModeWhole, "", "research"), reshaping: true,
		},
		"whole GPU still whole": {
			machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy(), held: held("gpu-1", tenancy.ModeWhole, "", "research"),
			heldOnGPU: 1,
		},
		"MIG device still published": {
			machine: migH200s, policy: tierratest.StandardPolicy(), held: held("gpu-0-3g-71gb-4", tenancy.ModeMIG, "", "product"),
		},
		"MIG device, GPU now whole": {
			machine: migH200s, labels: trainingLabels, policy: tierratest.StandardPolicy(),
			held: held("gpu-0-3g-71gb-4", tenancy.ModeMIG, "", "product"), reshaping: true,
		},
		"device of that name is another GPU's": {
			machine: h200s, labels: trainingLabels, policy: tierratest.StandardPolicy(), held: held("gpu-0", tenancy.ModeWhole, "", "research"),
			heldOnGPU: 1, reshaping: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dr := buildResources(t, tc.machine, tc.labels, tc.policy)
			uuid := tc.machine.GPUs[tc.heldOnGPU].UUID
			got := tslices.Reshaping(dr, map[string][]tslices.Held{uuid: {tc.held}})
			if !tc.reshaping {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, map[string][]tslices.Held{uuid: {tc.held}}, got)
		})
	}
}

func TestReshapingOfAnotherPool(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) })
	dr := buildResources(t, m, trainingLabels, tierratest.StandardPolicy())
	h := held("gpu-0", tenancy.ModeWhole, "", "research")
	h.Pool = "other-node"
	assert.Equal(t, map[string][]tslices.Held{m.GPUs[0].UUID: {h}}, tslices.Reshaping(dr, map[string][]tslices.Held{m.GPUs[0].UUID: {h}}))
}

// DevicePlacement reads back the memory slices each published MIG
// placement takes; TaintDevices puts per-device taints on exactly the
// devices the function names.
func TestDevicePlacementAndTaintDevices(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	dr := buildResources(t, m, nil, tierratest.StandardPolicy())
	profiles := map[string]inventory.MIGProfile{}
	for _, p := range m.GPUs[0].MIG.Profiles {
		profiles[p.Name] = p
	}
	var migDevices int
	for _, d := range devices(tslices.ResourceSlices(nodeName, dr)) {
		pl, ok := tslices.DevicePlacement(d)
		profile := tslices.StringAttribute(d, tslices.AttrMIGProfile)
		require.Equal(t, profile != "", ok, d.Name)
		assert.Equal(t, m.GPUs[0].UUID, tslices.DeviceGPU(d))
		if !ok {
			continue
		}
		migDevices++
		assert.Equal(t, profiles[profile].MemorySlices, pl.Size, d.Name)
		assert.Contains(t, profiles[profile].Placements, pl, d.Name)
	}
	require.NotZero(t, migDevices)

	taint := resourceapi.DeviceTaint{Key: "gpu.tierra.dev/xid", Value: "94", Effect: resourceapi.DeviceTaintEffectNoSchedule}
	got := tslices.TaintDevices(dr, func(d resourceapi.Device) []resourceapi.DeviceTaint {
		if pl, ok := tslices.DevicePlacement(d); ok && pl.Overlaps(inventory.MIGPlacement{Start: 0, Size: 1}) {
			return []resourceapi.DeviceTaint{taint}
		}
		return nil
	})
	for _, d := range devices(tslices.ResourceSlices(nodeName, got)) {
		pl, ok := tslices.DevicePlacement(d)
		if ok && pl.Start == 0 {
			assert.Equal(t, []resourceapi.DeviceTaint{taint}, d.Taints, d.Name)
		} else {
			assert.Empty(t, d.Taints, d.Name)
		}
	}
}
