package controller

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// TierUsage is what one tier publishes and what of it is allocated.
type TierUsage struct {
	DevicesPublished, DevicesAllocated int32
	// GPUs counts physical GPUs; AllocatedMilliGPUs the allocated capacity.
	GPUs               int32
	AllocatedMilliGPUs int64
}

// YieldPercent is allocated over published GPU capacity.
func (u TierUsage) YieldPercent() int32 {
	if u.GPUs == 0 {
		return 0
	}
	return int32(u.AllocatedMilliGPUs * 100 / (int64(u.GPUs) * tslices.ComputeUnitsPerGPU))
}

// publishedDevice is a device as usage accounting sees it.
type publishedDevice struct {
	tier string
	gpu  deviceKey // the physical GPU: the MIG counter set, else the device
	// migMilli is a MIG slice's share of its GPU; shared tells a device
	// whose allocations are priced by consumed compute.
	migMilli int64
	shared   bool
}

// milliGPUs is one allocation's size in thousandths of a GPU.
func (d publishedDevice) milliGPUs(consumed map[resourceapi.QualifiedName]resource.Quantity) int64 {
	switch {
	case d.shared:
		if q, ok := consumed[resourceapi.QualifiedName(tslices.CapCompute)]; ok {
			return q.Value()
		}
		return 0
	case d.migMilli > 0:
		return d.migMilli
	default:
		return tslices.ComputeUnitsPerGPU
	}
}

// TierUsages accounts, per tier, the driver's published devices and GPUs and
// the devices and GPU capacity allocated to claims. Only the newest
// generation of each pool counts, as the scheduler does.
func TierUsages(rs []*resourceapi.ResourceSlice, claims []*resourceapi.ResourceClaim) map[string]*TierUsage {
	devices := publishedDevices(rs)
	usage := map[string]*TierUsage{}
	get := func(tier string) *TierUsage {
		if usage[tier] == nil {
			usage[tier] = &TierUsage{}
		}
		return usage[tier]
	}
	gpus := map[deviceKey]bool{}
	for _, d := range devices {
		u := get(d.tier)
		u.DevicesPublished++
		if !gpus[d.gpu] {
			gpus[d.gpu] = true
			u.GPUs++
		}
	}
	for _, c := range claims {
		if c.Status.Allocation == nil {
			continue
		}
		for _, r := range c.Status.Allocation.Devices.Results {
			d, ok := devices[deviceKey{r.Pool, r.Device}]
			if r.Driver != driverName || !ok {
				continue
			}
			u := get(d.tier)
			u.DevicesAllocated++
			u.AllocatedMilliGPUs += d.milliGPUs(r.ConsumedCapacity)
		}
	}
	return usage
}

// publishedDevices indexes the tiered devices of the newest generation of
// every pool of the driver.
func publishedDevices(rs []*resourceapi.ResourceSlice) map[deviceKey]publishedDevice {
	newest := map[string]int64{}
	for _, s := range rs {
		if s.Spec.Driver == driverName && s.Spec.Pool.Generation > newest[s.Spec.Pool.Name] {
			newest[s.Spec.Pool.Name] = s.Spec.Pool.Generation
		}
	}
	var current []*resourceapi.ResourceSlice
	counterSets := map[deviceKey]int64{} // (pool, counter set) -> its total
	for _, s := range rs {
		if s.Spec.Driver != driverName || s.Spec.Pool.Generation != newest[s.Spec.Pool.Name] {
			continue
		}
		current = append(current, s)
		for _, set := range s.Spec.SharedCounters {
			for _, c := range set.Counters {
				counterSets[deviceKey{s.Spec.Pool.Name, set.Name}] += c.Value.Value()
			}
		}
	}
	devices := map[deviceKey]publishedDevice{}
	for _, s := range current {
		pool := s.Spec.Pool.Name
		for _, d := range s.Spec.Devices {
			tier := tslices.StringAttribute(d, tslices.AttrTier)
			if tier == "" {
				continue
			}
			pd := publishedDevice{tier: tier, gpu: deviceKey{pool, d.Name}, shared: d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations}
			if len(d.ConsumesCounters) > 0 {
				set := deviceKey{pool, d.ConsumesCounters[0].CounterSet}
				var used int64
				for _, c := range d.ConsumesCounters[0].Counters {
					used += c.Value.Value()
				}
				pd.gpu = deviceKey{pool, "counterset/" + set.device}
				if total := counterSets[set]; total > 0 {
					pd.migMilli = used * tslices.ComputeUnitsPerGPU / total
				}
			}
			devices[deviceKey{pool, d.Name}] = pd
		}
	}
	return devices
}
