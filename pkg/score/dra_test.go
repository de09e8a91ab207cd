package score

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// nodeSlice is a slice of n shared GPUs of one product on node.
func nodeSlice(node, product string, n int) *resourceapi.ResourceSlice {
	s := &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: node + "-gpus", UID: types.UID("uid-" + node), ResourceVersion: "1"},
		Spec: resourceapi.ResourceSliceSpec{Driver: slices.DriverName, NodeName: ptr.To(node),
			Pool: resourceapi.ResourcePool{Name: node, ResourceSliceCount: 1}},
	}
	for i := range n {
		d := sharedDevice(product)
		d.Name = fmt.Sprintf("gpu-%d", i)
		s.Spec.Devices = append(s.Spec.Devices, d)
	}
	return s
}

func claim(name string, count int64, compute string, selector string) *resourceapi.ResourceClaim {
	req := resourceapi.ExactDeviceRequest{DeviceClassName: "gpu", Count: count, AllocationMode: resourceapi.DeviceAllocationModeExactCount,
		Capacity: &resourceapi.CapacityRequirements{Requests: map[resourceapi.QualifiedName]resource.Quantity{slices.CapCompute: resource.MustParse(compute)}}}
	if selector != "" {
		req.Selectors = []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: selector}}}
	}
	return &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{Name: "gpu", Exactly: &req}}}}}
}

func gpuClass(string) (*resourceapi.DeviceClass, error) {
	return &resourceapi.DeviceClass{Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{
		CEL: &resourceapi.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", slices.DriverName)}}}}}, nil
}

func TestInventoryAndDemand(t *testing.T) {
	table := NewTable([]Typical{{Milli: 1000, Num: 1, Weight: 1}})
	inv := NewInventory(slices.DriverName, table)
	other := nodeSlice("c", "T4", 1)
	other.Spec.Driver = "other.example.com"
	rs := []*resourceapi.ResourceSlice{nodeSlice("a", "T4", 2), nodeSlice("b", "A10", 2), other}
	rs[0].Spec.Devices[1].Taints = []resourceapi.DeviceTaint{{Key: "k", Effect: resourceapi.DeviceTaintEffectNoSchedule}}
	nodes := inv.Nodes(rs)
	require.Len(t, nodes, 2, "only the driver's slices")
	assert.Len(t, nodes["a"].Devices, 1, "the tainted device is left out")
	assert.Len(t, nodes["b"].Devices, 2)
	assert.Same(t, nodes["b"], inv.Nodes(rs)["b"], "unchanged slices are not parsed or joined again")
	shapes, classes := table.Snapshot()
	require.Len(t, shapes, 2)
	require.Len(t, classes, 1)

	// 400 of b's first GPU is consumed by an allocated claim.
	id := nodes["b"].Devices[0].ID
	alloc := &structured.AllocatedState{AllocatedDevices: sets.New[structured.DeviceID](), AggregatedCapacity: structured.NewConsumedCapacityCollection()}
	alloc.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, map[resourceapi.QualifiedName]resource.Quantity{slices.CapCompute: resource.MustParse("400")}))
	host := Host{MilliCPU: 8000, Memory: 1 << 34}
	b := NodeOf(host, nodes["b"], shapes, alloc)
	assert.Equal(t, []int64{600, 1000}, []int64{b.FreeMilli(0, shapes), b.FreeMilli(1, shapes)})

	res := Resolver{Classes: gpuClass, CEL: cel.NewCache(10, cel.Features{EnableConsumableCapacity: true}), Shapes: shapes, Table: table}
	d, err := NewDemand([]*resourceapi.ResourceClaim{claim("half", 1, "500", "")}, res)
	require.NoError(t, err)
	picks, ok := FirstFit(b, d.On(context.Background(), 100, 0, nodes["b"], nil), nil)
	require.True(t, ok)
	assert.Equal(t, []Pick{{GPU: 0, Take: 500}}, picks, "the first GPU still has 600 left")

	sel := fmt.Sprintf("device.attributes[%q].productName == \"T4\"", slices.DriverName)
	d, err = NewDemand([]*resourceapi.ResourceClaim{claim("t4", 1, "100", sel)}, res)
	require.NoError(t, err)
	_, ok = FirstFit(b, d.On(context.Background(), 100, 0, nodes["b"], nil), nil)
	assert.False(t, ok, "the selector rules out b's A10s")
	a := NodeOf(host, nodes["a"], shapes, alloc)
	_, ok = FirstFit(a, d.On(context.Background(), 100, 0, nodes["a"], nil), nil)
	assert.True(t, ok)

	allocated := claim("done", 1, "100", "")
	allocated.Status.Allocation = &resourceapi.AllocationResult{}
	d, err = NewDemand([]*resourceapi.ResourceClaim{allocated}, res)
	require.NoError(t, err)
	assert.True(t, d.Empty(), "an allocated claim asks for nothing new")
}

func TestNormalize(t *testing.T) {
	got := Normalize([]Rank{{-5, 0}, {-1, -3}, {-1, -2}, {-9, 0}, {-1, -2}})
	assert.Equal(t, []int64{33, 66, 100, 0, 100}, got)
	assert.Equal(t, []int64{100, 100}, Normalize([]Rank{{1, 1}, {1, 1}}))
}
