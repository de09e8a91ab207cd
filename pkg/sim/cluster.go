package sim

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// DriverName is Tierra's DRA driver.
const DriverName = slices.DriverName

// Publisher turns one node's GPUs into the driver's resources: pkg/slices
// in production, a fake in tests.
type Publisher func(name string, labels map[string]string, machine inventory.Machine, policy *v1alpha1.TierPolicy) (resourceslice.DriverResources, error)

// SharedPolicy is the TierPolicy the simulation publishes with: one tier,
// time-sliced sharing, matching every GPU. Each GPU becomes one device with
// allowMultipleAllocations and consumable memory and compute capacity.
func SharedPolicy() *v1alpha1.TierPolicy {
	return &v1alpha1.TierPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: v1alpha1.TierPolicySpec{Tiers: []v1alpha1.Tier{{
			Name:         "shared",
			Partitioning: v1alpha1.PartitioningShared,
			Sharing:      &v1alpha1.GpuSharing{Strategy: v1alpha1.SharingTimeSlicing},
		}}},
	}
}

// dim is one consumable capacity of a GPU device, in milli-units.
type dim struct {
	name     resourceapi.QualifiedName
	capacity int64
	policy   *resourceapi.CapacityRequestPolicy
}

// shape is the capacity layout shared by GPUs of one product.
type shape struct {
	product string
	model   string
	dims    []dim
	// compute indexes the compute-share capacity in dims.
	compute int
}

// gpu is the simulation's mirror of one published device.
type gpu struct {
	id    structured.DeviceID
	shape int
	free  []int64
}

// nodeState is one node: its published slices, what is used, and the
// allocated state the scheduler would hand the allocator.
type nodeState struct {
	trace            *Node
	node             *v1.Node
	slices           []*resourceapi.ResourceSlice
	cpuUsed, memUsed int64
	gpus             []gpu
	byName           map[string]int
	alloc            structured.AllocatedState
	// frag caches the node's expected fragmentation; valid when fragOK.
	frag   float64
	fragOK bool
}

// published is what publishing the node list yields, shared read-only by
// every seed.
type published struct {
	nodes  []Node
	slices [][]*resourceapi.ResourceSlice
	shapes []shape
	// gpuShape[n][i] is the shape of node n's i-th device, in slice order.
	gpuShape [][]int
	gpuIDs   [][]structured.DeviceID
	gpus     int
}

// publish runs the publisher over every node and checks that each device
// is a shared GPU the simulation can account for.
func publish(nodes []Node, pub Publisher) (*published, error) {
	p := &published{nodes: nodes}
	policy := SharedPolicy()
	shapeIdx := map[string]int{}
	for i := range nodes {
		n := &nodes[i]
		res, err := pub(n.Name, map[string]string{"kubernetes.io/hostname": n.Name}, n.Machine(), policy)
		if err != nil {
			return nil, fmt.Errorf("publish node %s: %w", n.Name, err)
		}
		sl := slices.ResourceSlices(n.Name, res)
		var shapes []int
		var ids []structured.DeviceID
		for _, s := range sl {
			for _, d := range s.Spec.Devices {
				sh, err := deviceShape(d, n.Model)
				if err != nil {
					return nil, fmt.Errorf("node %s device %s: %w", n.Name, d.Name, err)
				}
				key := fmt.Sprintf("%s/%v", sh.product, sh.dims)
				idx, ok := shapeIdx[key]
				if !ok {
					idx = len(p.shapes)
					shapeIdx[key] = idx
					p.shapes = append(p.shapes, sh)
				}
				shapes = append(shapes, idx)
				ids = append(ids, structured.MakeDeviceID(s.Spec.Driver, s.Spec.Pool.Name, d.Name))
			}
		}
		if len(shapes) != n.GPUs {
			return nil, fmt.Errorf("node %s: published %d devices for %d GPUs (MIG or extra devices are not simulated)", n.Name, len(shapes), n.GPUs)
		}
		p.slices = append(p.slices, sl)
		p.gpuShape = append(p.gpuShape, shapes)
		p.gpuIDs = append(p.gpuIDs, ids)
		p.gpus += n.GPUs
	}
	return p, nil
}

// deviceShape reads a device's consumable capacities. The simulation needs
// a shared device (allowMultipleAllocations) with a compute capacity.
func deviceShape(d resourceapi.Device, model string) (shape, error) {
	if d.AllowMultipleAllocations == nil || !*d.AllowMultipleAllocations {
		return shape{}, fmt.Errorf("device is not shared (allowMultipleAllocations unset); the simulation needs the Shared partitioning")
	}
	sh := shape{model: model, compute: -1}
	sh.product = slices.StringAttribute(d, slices.AttrProductName)
	names := make([]string, 0, len(d.Capacity))
	for n := range d.Capacity {
		names = append(names, string(n))
	}
	sort.Strings(names)
	for _, n := range names {
		c := d.Capacity[resourceapi.QualifiedName(n)]
		if strings.Contains(strings.ToLower(n), "compute") {
			sh.compute = len(sh.dims)
		}
		sh.dims = append(sh.dims, dim{name: resourceapi.QualifiedName(n), capacity: c.Value.MilliValue(), policy: c.RequestPolicy})
	}
	if sh.compute < 0 {
		return shape{}, fmt.Errorf("no compute capacity among %v", names)
	}
	return sh, nil
}

// newNodeStates builds the mutable per-seed state from the published view.
func newNodeStates(p *published) []nodeState {
	states := make([]nodeState, len(p.nodes))
	for i := range p.nodes {
		s := &states[i]
		s.trace = &p.nodes[i]
		s.node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.trace.Name, Labels: map[string]string{"kubernetes.io/hostname": s.trace.Name}}}
		s.slices = p.slices[i]
		s.byName = map[string]int{}
		for j, sh := range p.gpuShape[i] {
			free := make([]int64, len(p.shapes[sh].dims))
			for k, d := range p.shapes[sh].dims {
				free[k] = d.capacity
			}
			s.gpus = append(s.gpus, gpu{id: p.gpuIDs[i][j], shape: sh, free: free})
			s.byName[p.gpuIDs[i][j].Device.String()] = j
		}
		s.alloc = structured.AllocatedState{
			AllocatedDevices:         sets.New[structured.DeviceID](),
			AllocatedSharedDeviceIDs: sets.New[structured.SharedDeviceID](),
			AggregatedCapacity:       structured.NewConsumedCapacityCollection(),
		}
	}
	return states
}

// apply records an allocation result the way the scheduler's assume cache
// does: shared devices by share ID plus consumed capacity, others as used.
func (s *nodeState) apply(p Pod, res resourceapi.AllocationResult, shapes []shape) error {
	for _, r := range res.Devices.Results {
		j, ok := s.byName[r.Device]
		if !ok {
			return fmt.Errorf("allocator chose unknown device %s/%s on %s", r.Pool, r.Device, s.trace.Name)
		}
		g := &s.gpus[j]
		if r.ShareID == nil {
			s.alloc.AllocatedDevices.Insert(g.id)
			clear(g.free)
			continue
		}
		s.alloc.AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(g.id, r.ShareID))
		s.alloc.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(g.id, r.ConsumedCapacity))
		for k, d := range shapes[g.shape].dims {
			q, ok := r.ConsumedCapacity[d.name]
			if !ok {
				continue
			}
			g.free[k] -= q.MilliValue()
		}
	}
	s.cpuUsed += p.MilliCPU
	s.memUsed += p.MemoryMiB
	s.fragOK = false
	return nil
}
