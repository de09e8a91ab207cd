package controller

import (
	resourceapi "k8s.io/api/resource/v1"
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
// tier's devices on the node. It keeps
// parsed slices between scrapes (score.Inventory) and is safe for
// concurrent use.
type strandedModel struct {
	table *score.Table
	inv   *score.Inventory
}

func newStrandedModel() *strandedModel {
	// The table's typical pods are unused: each tier's are resolved
	// against the shapes at each scrape.
	table := score.NewTable(nil)
	return &strandedModel{table: table, inv: score.NewInventory(driverName, table)}
}

// stranded returns, per tier and node, the GPUs' idle share (in GPUs) that
// the tier's typical claims cannot use. A MIG GPU counts by its free memory
// slices and the placements still possible (pkg/score). Any other GPU
// counts once: of a soft-shared GPU's tenant slots the one in use (the
// others cannot be allocated while it is), else the first. Devices tainted
// NoSchedule or NoExecute are left out, as the scheduler leaves them out.
func (m *strandedModel) stranded(rs []*resourceapi.ResourceSlice, idx map[tslices.DeviceKey]tslices.Published,
	allocated []*resourceapi.ResourceClaim, typical map[string][]score.Typical) map[tierNode]float64 {
	byNode := m.inv.Nodes(rs)
	shapes, _ := m.table.Snapshot()
	state := (&allocator.Cluster{Allocated: allocated}).State()
	classes := map[string][]score.Class{}
	out := map[tierNode]float64{}
	for _, nd := range byNode {
		for key, devs := range tierDevices(nd, idx, &state) {
			cl, ok := classes[key.tier]
			if !ok {
				cl = score.NewClasses(score.MostPopular(typical[key.tier]), shapes)
				classes[key.tier] = cl
			}
			node := score.NodeOf(score.Host{}, devs, shapes, &state)
			out[key] = node.Frag(cl, shapes, make([]int64, 0, len(devs.Devices))) / tslices.ComputeUnitsPerGPU
		}
	}
	return out
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
	if state.AllocatedDevices.Has(id) {
		return true
	}
	_, shared := state.AggregatedCapacity[id]
	return shared
}
