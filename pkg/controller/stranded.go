package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/score"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// tierNode names one tier's devices on one node (the node's pool).
type tierNode struct{ tier, node string }

// strandedModel measures stranded GPU share with pkg/score, the code
// `tierra sim` reports fragmentation with and TierraYield scores by: FGD's
// expected fragmentation of a node against a target workload, here of one
// tier's devices on the node. It keeps parsed slices between scrapes
// (score.Inventory) and is safe for concurrent use.
type strandedModel struct {
	table *score.Table
	inv   *score.Inventory
	cel   *cel.Cache
}

func newStrandedModel() *strandedModel {
	// The table's typical pods are unused: each tier's are resolved
	// against the shapes at each scrape.
	table := score.NewTable(nil)
	return &strandedModel{table: table, inv: score.NewInventory(driverName, table),
		cel: allocator.NewCELCache(256, allocator.SchedulerFeatures)}
}

// strandedInput is one scrape's view for strandedModel.
type strandedInput struct {
	slices    []*resourceapi.ResourceSlice
	idx       map[tslices.DeviceKey]tslices.Published
	allocated []*resourceapi.ResourceClaim
	// typical are each tier's claims of known shape; predict are pending
	// claims (cut down to one tier's requests) whose shape FirstFit
	// predicts on the tier's idle devices.
	typical map[string][]score.Typical
	predict map[string][]prediction
	classes map[string]*resourceapi.DeviceClass
}

// prediction is a pending claim cut down to one tier's requests, with the
// shape it counts as when FirstFit cannot place it.
type prediction struct {
	claim    *resourceapi.ResourceClaim
	fallback score.Typical
}

// stranded returns, per tier and node, the GPUs' idle share (in GPUs) that
// the tier's typical claims cannot use. A MIG GPU counts by its free memory
// slices and the placements still possible (pkg/score). Any other GPU
// counts once: of a soft-shared GPU's tenant slots the one in use (the
// others cannot be allocated while it is), else the first. Devices tainted
// NoSchedule or NoExecute are left out, as the scheduler leaves them out.
func (m *strandedModel) stranded(in strandedInput) map[tierNode]float64 {
	byNode := m.inv.Nodes(in.slices)
	shapes, _ := m.table.Snapshot()
	state := (&allocator.Cluster{Allocated: in.allocated}).State()
	views := map[tierNode]*score.NodeDevices{}
	for _, nd := range byNode {
		for key, devs := range tierDevices(nd, in.idx, &state) {
			views[key] = devs
		}
	}
	typical := m.predicted(in, views, shapes)
	classes := map[string][]score.Class{}
	out := map[tierNode]float64{}
	for key, devs := range views {
		cl, ok := classes[key.tier]
		if !ok {
			cl = score.NewClasses(score.MostPopular(typical[key.tier]), shapes)
			classes[key.tier] = cl
		}
		node := score.NodeOf(score.Host{}, devs, shapes, &state)
		out[key] = node.Frag(cl, shapes, make([]int64, 0, len(devs.Devices))) / tslices.ComputeUnitsPerGPU
	}
	return out
}

// predicted adds to the typical claims the pending ones whose shape
// FirstFit predicts: on the first node (by name) where the claim fits the
// tier's devices with nothing allocated, the devices it takes and the
// largest share of a GPU one of them is (a MIG slice its memory slices).
// A claim that fits no node, or whose selectors do not compile, counts as
// its fallback: its devices, whole GPUs.
func (m *strandedModel) predicted(in strandedInput, views map[tierNode]*score.NodeDevices, shapes []score.Shape) map[string][]score.Typical {
	if len(in.predict) == 0 {
		return in.typical
	}
	out := maps.Clone(in.typical)
	keys := slices.SortedFunc(maps.Keys(views), func(a, b tierNode) int { return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.node, b.node)) })
	r := score.Resolver{CEL: m.cel, Shapes: shapes, Table: m.table, Classes: func(name string) (*resourceapi.DeviceClass, error) {
		if c, ok := in.classes[name]; ok {
			return c, nil
		}
		return nil, fmt.Errorf("no managed DeviceClass %s", name)
	}}
	for tier, ps := range in.predict {
		for _, p := range ps {
			out[tier] = append(out[tier], predictOne(p, tier, keys, views, shapes, r))
		}
	}
	return out
}

func predictOne(p prediction, tier string, keys []tierNode, views map[tierNode]*score.NodeDevices,
	shapes []score.Shape, r score.Resolver) score.Typical {
	demand, err := score.NewDemand([]*resourceapi.ResourceClaim{p.claim}, r)
	if err != nil {
		return p.fallback
	}
	for _, key := range keys {
		if key.tier != tier {
			continue
		}
		node := score.NodeOf(score.Host{}, views[key], shapes, nil)
		picks, ok := score.FirstFit(node, demand.On(context.Background(), 0, 0, views[key], nil), nil)
		if !ok || len(picks) == 0 {
			continue
		}
		t := score.Typical{Num: len(picks)}
		for _, p := range picks {
			t.Milli = max(t.Milli, p.Take)
		}
		return t
	}
	return p.fallback
}

// tierDevices splits a node's devices by tier, each tier with the counter
// sets its devices draw on; a non-MIG GPU keeps one device (see stranded).
func tierDevices(nd *score.NodeDevices, idx map[tslices.DeviceKey]tslices.Published, state *structured.AllocatedState) map[tierNode]*score.NodeDevices {
	out := map[tierNode]*score.NodeDevices{}
	slot := map[tslices.DeviceKey]int{} // non-MIG GPU -> its device's index in its tier
	sets := map[tierNode]map[int]int{}  // node set -> the tier's set
	for _, d := range nd.Devices {
		p, ok := idx[tslices.DeviceKey{Pool: d.ID.Pool.String(), Device: d.ID.Device.String()}]
		if !ok {
			continue // an older generation of the pool, or no tier
		}
		key := tierNode{p.Tier, p.GPU.Pool}
		td := out[key]
		if td == nil {
			td = &score.NodeDevices{}
			out[key], sets[key] = td, map[int]int{}
		}
		mig := d.Part != nil && nd.Sets[d.Part.Set].Slices > 0
		if i, dup := slot[p.GPU]; dup && !mig {
			if inUse(state, d.ID) {
				td.Devices[i] = withSet(d, nd, td, sets[key])
			}
			continue
		}
		if !mig {
			slot[p.GPU] = len(td.Devices)
		}
		td.Devices = append(td.Devices, withSet(d, nd, td, sets[key]))
	}
	return out
}

// withSet is the device with its counter set moved into the tier's sets.
func withSet(d score.Device, nd, td *score.NodeDevices, sets map[int]int) score.Device {
	if d.Part == nil {
		return d
	}
	s, ok := sets[d.Part.Set]
	if !ok {
		s = len(td.Sets)
		sets[d.Part.Set] = s
		td.Sets = append(td.Sets, nd.Sets[d.Part.Set])
	}
	part := *d.Part
	part.Set = s
	d.Part = &part
	return d
}

func inUse(state *structured.AllocatedState, id structured.DeviceID) bool {
	if state == nil {
		return false
	}
	if state.AllocatedDevices.Has(id) {
		return true
	}
	_, shared := state.AggregatedCapacity[id]
	return shared
}
