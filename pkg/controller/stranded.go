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
// expected fragmentation of a node against a target workload. It keeps
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
// the tier's typical claims cannot use. Each physical GPU counts once: of a
// soft-shared GPU's tenant slots the one in use (the others cannot be
// allocated while it is), else the first. A tier whose devices on a node
// include MIG slices gets no value there: FGD's share per GPU does not
// describe which MIG placements are left. Devices tainted NoSchedule or
// NoExecute are left out, as the scheduler leaves them out.
func (m *strandedModel) stranded(rs []*resourceapi.ResourceSlice, idx map[tslices.DeviceKey]tslices.Published,
	allocated []*resourceapi.ResourceClaim, typical map[string][]score.Typical) map[tierNode]float64 {
	byNode := m.inv.Nodes(rs)
	shapes, _ := m.table.Snapshot()
	state := (&allocator.Cluster{Allocated: allocated}).State()
	groups := map[tierNode][]score.Device{}
	mig := map[tierNode]bool{}
	slot := map[tslices.DeviceKey]int{} // GPU -> its device's index in its group
	for _, devs := range byNode {
		for _, d := range devs {
			p, ok := idx[tslices.DeviceKey{Pool: d.ID.Pool.String(), Device: d.ID.Device.String()}]
			if !ok {
				continue // an older generation of the pool, or no tier
			}
			key := tierNode{p.Tier, p.GPU.Pool}
			if _, isMIG := d.Spec.Attributes[tslices.AttrMIGProfile]; isMIG {
				mig[key] = true
				continue
			}
			if i, dup := slot[p.GPU]; dup {
				if inUse(&state, d.ID) {
					groups[key][i] = d
				}
				continue
			}
			slot[p.GPU] = len(groups[key])
			groups[key] = append(groups[key], d)
		}
	}
	classes := map[string][]score.Class{}
	out := make(map[tierNode]float64, len(groups))
	for key, devs := range groups {
		if mig[key] {
			continue
		}
		cl, ok := classes[key.tier]
		if !ok {
			cl = score.NewClasses(score.MostPopular(typical[key.tier]), shapes)
			classes[key.tier] = cl
		}
		node := score.NodeOf(score.Host{}, devs, shapes, &state)
		out[key] = node.Frag(cl, shapes, make([]int64, 0, len(devs))) / tslices.ComputeUnitsPerGPU
	}
	return out
}

func inUse(state *structured.AllocatedState, id structured.DeviceID) bool {
	if state.AllocatedDevices.Has(id) {
		return true
	}
	_, shared := state.AggregatedCapacity[id]
	return shared
}
