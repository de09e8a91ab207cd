package score

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/dynamic-resource-allocation/cel"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

func only(r Request, j int) Request {
	r.Match = MatchFunc(func(k int) bool { return k == j })
	return r
}

func all(milli int64, shapes ...int) Request {
	r := share(milli, 0, shapes...)
	r.All = true
	return r
}

func TestFirstFitRequestKinds(t *testing.T) {
	tests := map[string]struct {
		free      []int64
		requests  []Request
		wantPicks []Pick
	}{
		"prioritized list: the first subrequest that fits": {
			free:      []int64{1000, 600},
			requests:  []Request{{FirstAvailable: []Request{share(1000, 2, 0), share(500, 1, 0)}}},
			wantPicks: []Pick{{0, 500}},
		},
		"prioritized list: the first subrequest when it fits": {
			free:      []int64{1000, 1000},
			requests:  []Request{{FirstAvailable: []Request{share(1000, 2, 0), share(500, 1, 0)}}},
			wantPicks: []Pick{{0, 1000}, {1, 1000}},
		},
		"prioritized list: the next subrequest when a later request would not fit": {
			free:      []int64{1000, 400},
			requests:  []Request{{FirstAvailable: []Request{share(1000, 1, 0), only(share(400, 1, 0), 1)}}, share(1000, 1, 0)},
			wantPicks: []Pick{{1, 400}, {0, 1000}},
		},
		"prioritized list: no subrequest fits": {
			free:     []int64{300, 300},
			requests: []Request{{FirstAvailable: []Request{share(1000, 1, 0), share(500, 1, 0)}}},
		},
		"all: every device of the shape": {
			free:      []int64{1000, 1000, 1000},
			requests:  []Request{all(1000, 0)},
			wantPicks: []Pick{{0, 1000}, {1, 1000}, {2, 1000}},
		},
		"all: one matching device in use fails the request": {
			free:     []int64{1000, 900, 1000},
			requests: []Request{all(1000, 0)},
		},
		"all: only the devices the selectors accept": {
			free:      []int64{1000, 900, 1000},
			requests:  []Request{only(all(1000, 0), 2)},
			wantPicks: []Pick{{2, 1000}},
		},
		"all: no matching device fails": {
			free:     []int64{1000},
			requests: []Request{all(1000, 1)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := &Node{MilliCPU: 1000, Memory: 1000, GPUs: gpus(0, tc.free...)}
			picks, ok := FirstFit(n, &Pod{Requests: tc.requests}, nil)
			assert.Equal(t, tc.wantPicks != nil, ok)
			assert.Equal(t, tc.wantPicks, picks)
		})
	}
}

func compute(q string) *resourceapi.CapacityRequirements {
	return &resourceapi.CapacityRequirements{Requests: map[resourceapi.QualifiedName]resource.Quantity{slices.CapCompute: resource.MustParse(q)}}
}

func TestDemandRequestKinds(t *testing.T) {
	table := NewTable(nil)
	nodes := NewInventory(slices.DriverName, table).Nodes([]*resourceapi.ResourceSlice{nodeSlice("b", "A10", 2)})
	shapes, _ := table.Snapshot()
	res := Resolver{Classes: gpuClass, CEL: cel.NewCache(10, cel.Features{EnableConsumableCapacity: true}), Shapes: shapes, Table: table}
	half := NodeOf(Host{}, nodes["b"], shapes, nil)
	half.GPUs[0].Free[shapes[0].Compute] = 600_000
	sel := []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: `device.attributes["gpu.tierra.dev"].productName == "A10"`}}}
	tests := map[string]struct {
		request   resourceapi.DeviceRequest
		wantPicks []Pick
	}{
		"firstAvailable: two whole GPUs do not fit, half of one does": {
			request: resourceapi.DeviceRequest{Name: "r", FirstAvailable: []resourceapi.DeviceSubRequest{
				{Name: "big", DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 2, Capacity: compute("1000")},
				{Name: "small", DeviceClassName: "gpu", Selectors: sel, Capacity: compute("500")},
			}},
			wantPicks: []Pick{{0, 500}},
		},
		"all: every device, one of them partly used": {
			request: resourceapi.DeviceRequest{Name: "r", Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeAll, Capacity: compute("500")}},
			wantPicks: []Pick{{0, 500}, {1, 500}},
		},
		"all: a capacity no device has": {
			request: resourceapi.DeviceRequest{Name: "r", Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeAll, Capacity: compute("1001")}},
		},
		"all: more than the used device has left": {
			request: resourceapi.DeviceRequest{Name: "r", Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeAll, Capacity: compute("700")}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := claim("c", 1, "1", "")
			c.Spec.Devices.Requests = []resourceapi.DeviceRequest{tc.request}
			d, err := NewDemand([]*resourceapi.ResourceClaim{c}, res)
			require.NoError(t, err)
			picks, ok := FirstFit(half, d.On(context.Background(), 0, 0, nodes["b"], &PodBuf{}), nil)
			assert.Equal(t, tc.wantPicks != nil, ok)
			assert.Equal(t, tc.wantPicks, picks)
		})
	}
}
