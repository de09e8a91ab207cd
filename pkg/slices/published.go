package slices

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DeviceKey names a published device: its pool and its name.
type DeviceKey struct{ Pool, Device string }

// Published is what accounting (yield, cost) reads from a published device.
type Published struct {
	Tier string
	// GPU names the physical GPU behind the device: the counter set it
	// consumes from (a MIG slice, a tenant slot), else the device itself.
	GPU DeviceKey
	// Shared devices are sized and priced by the compute a claim consumes.
	Shared bool
	// milli is a non-shared device's size in thousandths of a GPU: a MIG
	// slice is the memory slices it covers over its GPU's.
	milli int64
	// CostPerHour and CostPerComputeUnit are the cost attributes (0 when
	// the price book has no price).
	CostPerHour, CostPerComputeUnit int64
}

// MilliGPUs is one allocation's size in thousandths of a GPU; consumed is
// the allocation's consumed capacity (a share of a shared device).
func (p Published) MilliGPUs(consumed map[resourceapi.QualifiedName]resource.Quantity) int64 {
	if !p.Shared {
		return p.milli
	}
	if q, ok := consumed[resourceapi.QualifiedName(CapCompute)]; ok {
		return q.Value()
	}
	return 0
}

// Cost is one allocation's price per hour, in micro-dollars: the device's
// costPerHour, or for a share its consumed compute times
// costPerComputeUnitHour.
func (p Published) Cost(consumed map[resourceapi.QualifiedName]resource.Quantity) int64 {
	if !p.Shared {
		return p.CostPerHour
	}
	return p.MilliGPUs(consumed) * p.CostPerComputeUnit
}

// Index indexes the tiered devices of this driver in the newest generation
// of each pool, as the scheduler sees them.
func Index(rs []*resourceapi.ResourceSlice) map[DeviceKey]Published {
	newest := map[string]int64{}
	for _, s := range rs {
		if s.Spec.Driver == DriverName && s.Spec.Pool.Generation >= newest[s.Spec.Pool.Name] {
			newest[s.Spec.Pool.Name] = s.Spec.Pool.Generation
		}
	}
	var current []*resourceapi.ResourceSlice
	counterSets := map[DeviceKey]int64{} // (pool, counter set) -> its total
	for _, s := range rs {
		if s.Spec.Driver != DriverName || s.Spec.Pool.Generation != newest[s.Spec.Pool.Name] {
			continue
		}
		current = append(current, s)
		for _, set := range s.Spec.SharedCounters {
			for _, c := range set.Counters {
				counterSets[DeviceKey{s.Spec.Pool.Name, set.Name}] += c.Value.Value()
			}
		}
	}
	index := map[DeviceKey]Published{}
	for _, s := range current {
		for _, d := range s.Spec.Devices {
			if tier := StringAttribute(d, AttrTier); tier != "" {
				index[DeviceKey{s.Spec.Pool.Name, d.Name}] = indexDevice(s.Spec.Pool.Name, d, tier, counterSets)
			}
		}
	}
	return index
}

func indexDevice(pool string, d resourceapi.Device, tier string, counterSets map[DeviceKey]int64) Published {
	p := Published{Tier: tier, GPU: DeviceKey{pool, d.Name}, milli: ComputeUnitsPerGPU,
		Shared: d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations}
	p.CostPerHour, _ = IntAttribute(d, AttrCostPerHour)
	p.CostPerComputeUnit, _ = IntAttribute(d, AttrCostPerComputeUnit)
	if len(d.ConsumesCounters) == 0 {
		return p
	}
	set := DeviceKey{pool, d.ConsumesCounters[0].CounterSet}
	p.GPU = DeviceKey{pool, "counterset/" + set.Device}
	var used int64
	for _, c := range d.ConsumesCounters[0].Counters {
		used += c.Value.Value()
	}
	if total := counterSets[set]; total > 0 {
		p.milli = used * ComputeUnitsPerGPU / total
	}
	return p
}
