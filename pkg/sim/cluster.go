package sim

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/score"
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

// nodeState is one node: its published slices, what is used (the scorer's
// view, score.Node), and the allocated state the scheduler would hand the
// allocator.
type nodeState struct {
	score.Node
	trace  *Node
	node   *v1.Node
	slices []*resourceapi.ResourceSlice
	// ids[j] is the device of GPU j.
	ids    []structured.DeviceID
	byName map[string]int
	alloc  structured.AllocatedState
}

// published is what publishing the node list yields, shared read-only by
// every seed.
type published struct {
	nodes  []Node
	slices [][]*resourceapi.ResourceSlice
	shapes []score.Shape
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
		m, err := nodeMachine(context.Background(), *n, pinnedMIG(*n))
		if err != nil {
			return nil, fmt.Errorf("publish node %s: %w", n.Name, err)
		}
		res, err := pub(n.Name, nodeLabels(*n), m, policy)
		if err != nil {
			return nil, fmt.Errorf("publish node %s: %w", n.Name, err)
		}
		sl := slices.ResourceSlices(n.Name, res)
		var shapes []int
		var ids []structured.DeviceID
		for _, s := range sl {
			for _, d := range s.Spec.Devices {
				sh, err := score.SharedShapeOf(d)
				if err != nil {
					return nil, fmt.Errorf("node %s device %s: %w; the simulation needs the Shared partitioning", n.Name, d.Name, err)
				}
				key := sh.Key()
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

// newNodeStates builds the mutable per-seed state from the published view.
func newNodeStates(p *published) []nodeState {
	states := make([]nodeState, len(p.nodes))
	for i := range p.nodes {
		s := &states[i]
		s.trace = &p.nodes[i]
		s.MilliCPU, s.Memory = s.trace.MilliCPU, s.trace.MemoryMiB<<20
		s.node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.trace.Name, Labels: map[string]string{"kubernetes.io/hostname": s.trace.Name}}}
		s.slices = p.slices[i]
		s.byName = map[string]int{}
		for j, sh := range p.gpuShape[i] {
			s.GPUs = append(s.GPUs, score.GPU{Shape: sh, Free: p.shapes[sh].Full()})
			s.ids = append(s.ids, p.gpuIDs[i][j])
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
func (s *nodeState) apply(p Pod, res resourceapi.AllocationResult, shapes []score.Shape) error {
	for _, r := range res.Devices.Results {
		j, ok := s.byName[r.Device]
		if !ok {
			return fmt.Errorf("allocator chose unknown device %s/%s on %s", r.Pool, r.Device, s.trace.Name)
		}
		g, id := &s.GPUs[j], s.ids[j]
		if r.ShareID == nil {
			s.alloc.AllocatedDevices.Insert(id)
			clear(g.Free)
			continue
		}
		s.alloc.AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(id, r.ShareID))
		s.alloc.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, r.ConsumedCapacity))
		for k, d := range shapes[g.Shape].Dims {
			q, ok := r.ConsumedCapacity[d.Name]
			if !ok {
				continue
			}
			g.Free[k] -= q.MilliValue()
		}
	}
	s.addHost(p)
	return nil
}

// addHost books the pod's cpu and memory on the node.
func (s *nodeState) addHost(p Pod) {
	s.UsedMilliCPU += p.MilliCPU
	s.UsedMemory += p.MemoryMiB << 20
	s.Changed()
}
