package slices

// This file reads published devices back (the builder is build.go): what
// accounting (yield, cost) needs of each device, as the scheduler sees it.

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cost"
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
	// Price is read from the cost attributes (zero when the price book had
	// no price).
	Price cost.Price
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

// Cost is one allocation's price per hour (cost.Price.Allocation): the
// device's costPerHour, or for a share its consumed compute times
// costPerComputeUnitHour.
func (p Published) Cost(consumed map[resourceapi.QualifiedName]resource.Quantity) v1alpha1.MicroDollars {
	return p.Price.Allocation(p.MilliGPUs(consumed))
}

// DevicePrice reads back the price a device was published with (setPrice):
// a device that allows multiple allocations is priced by compute unit.
func DevicePrice(d resourceapi.Device) cost.Price {
	perHour, _ := IntAttribute(d, AttrCostPerHour)
	perUnit, _ := IntAttribute(d, AttrCostPerComputeUnit)
	return cost.Price{PerHour: v1alpha1.MicroDollars(perHour), PerComputeUnit: v1alpha1.MicroDollars(perUnit),
		ByComputeUnit: allowsMultiple(d)}
}

func allowsMultiple(d resourceapi.Device) bool {
	return d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations
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
		Shared: allowsMultiple(d), Price: DevicePrice(d)}
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
