package controller

import (
	resourceapi "k8s.io/api/resource/v1"

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

// TierUsages accounts, per tier, the driver's published devices and GPUs and
// the devices and GPU capacity allocated to claims (tslices.Index: only the
// newest generation of each pool counts, as the scheduler does).
func TierUsages(rs []*resourceapi.ResourceSlice, claims []*resourceapi.ResourceClaim) map[string]*TierUsage {
	devices := tslices.Index(rs)
	usage := map[string]*TierUsage{}
	get := func(tier string) *TierUsage {
		if usage[tier] == nil {
			usage[tier] = &TierUsage{}
		}
		return usage[tier]
	}
	gpus := map[tslices.DeviceKey]bool{}
	for _, d := range devices {
		u := get(d.Tier)
		u.DevicesPublished++
		if !gpus[d.GPU] {
			gpus[d.GPU] = true
			u.GPUs++
		}
	}
	for _, c := range claims {
		if c.Status.Allocation == nil {
			continue
		}
		for _, r := range c.Status.Allocation.Devices.Results {
			d, ok := devices[tslices.DeviceKey{Pool: r.Pool, Device: r.Device}]
			if r.Driver != driverName || !ok {
				continue
			}
			u := get(d.Tier)
			u.DevicesAllocated++
			u.AllocatedMilliGPUs += d.MilliGPUs(r.ConsumedCapacity)
		}
	}
	return usage
}
