package slices

import (
	"slices"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

// ReshapingTaintKey is the key of the taint a GPU's devices carry while live
// claims hold it as a shape the node no longer publishes (re-tiering).
const ReshapingTaintKey = DriverName + "/reshaping"

// ReshapingTaintValue says why: claims hold the GPU's previous shape.
const ReshapingTaintValue = "ClaimsOnPreviousShape"

// ReshapingTaint is the NoSchedule taint of a reshaping GPU's devices: the
// scheduler allocates nothing new on the GPU until the claims that hold its
// previous shape end. Prepare refuses a claim that tolerates it anyway and
// conflicts with those claims (tenancy.CheckGPU).
func ReshapingTaint() resourceapi.DeviceTaint {
	return resourceapi.DeviceTaint{Key: ReshapingTaintKey, Value: ReshapingTaintValue, Effect: resourceapi.DeviceTaintEffectNoSchedule}
}

// Held is one device a live claim holds, as its checkpoint record names it:
// the pool and device it was allocated, and how it holds the GPU.
type Held struct {
	Pool, Device string
	tenancy.Use
}

// Reshaping returns the GPUs (by UUID) that live claims hold as a shape dr
// does not publish, each with the held devices that are gone: a held device
// is still published when dr has a device of that name in that pool on the
// same GPU that a claim holds the same way (whole, MIG, or shared under the
// same strategy) and, for a tenant slot, of the holder's tenant. held is
// per GPU UUID.
func Reshaping(dr resourceslice.DriverResources, held map[string][]Held) map[string][]Held {
	out := map[string][]Held{}
	for uuid, devices := range held {
		for _, h := range devices {
			if !publishedAsHeld(dr, uuid, h) {
				out[uuid] = append(out[uuid], h)
			}
		}
	}
	return out
}

func publishedAsHeld(dr resourceslice.DriverResources, uuid string, h Held) bool {
	pool, ok := dr.Pools[h.Pool]
	if !ok {
		return false
	}
	for _, s := range pool.Slices {
		for _, d := range s.Devices {
			if d.Name == h.Device {
				return deviceGPU(d) == uuid && sameUse(d, h.Use)
			}
		}
	}
	return false
}

// sameUse reports whether a claim could hold the published device d the way
// u holds it.
func sameUse(d resourceapi.Device, u tenancy.Use) bool {
	mode, strategy := tenancy.ModeWhole, ""
	switch {
	case StringAttribute(d, AttrMIGProfile) != "":
		mode = tenancy.ModeMIG
	case d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations:
		mode, strategy = tenancy.ModeShared, StringAttribute(d, AttrSharing)
	}
	if mode != u.Mode || strategy != u.Strategy {
		return false
	}
	if tenant, ok := d.Attributes[AttrTenant]; ok && tenant.StringValue != nil && *tenant.StringValue != u.Tenant {
		return false
	}
	return true
}

// deviceGPU is the UUID of the physical GPU behind a published device: a
// MIG device's parent, else the device's own (whole, shared, tenant slot).
func deviceGPU(d resourceapi.Device) string {
	if parent := StringAttribute(d, AttrParentUUID); parent != "" {
		return parent
	}
	return StringAttribute(d, AttrUUID)
}

// Taint returns dr with taint on every device of the GPUs (by UUID): whole
// and shared devices by their uuid, MIG devices by their parentUUID, tenant
// slots too. A device that has a taint of the same key gets this one
// instead. dr is not changed. A slice that gets a tainted device and holds
// more devices than the API allows with taints is split, keeping device
// order (the allocator's first-fit order).
func Taint(dr resourceslice.DriverResources, gpus sets.Set[string], taint resourceapi.DeviceTaint) resourceslice.DriverResources {
	if gpus.Len() == 0 {
		return dr
	}
	return TaintDevices(dr, func(d resourceapi.Device) []resourceapi.DeviceTaint {
		if gpus.Has(DeviceGPU(d)) {
			return []resourceapi.DeviceTaint{taint}
		}
		return nil
	})
}

// TaintDevices returns dr with the taints taints(d) returns on each device
// d; each replaces a taint of the same key the device has. dr is not
// changed; slices are split as Taint does.
func TaintDevices(dr resourceslice.DriverResources, taints func(resourceapi.Device) []resourceapi.DeviceTaint) resourceslice.DriverResources {
	out := resourceslice.DriverResources{Pools: make(map[string]resourceslice.Pool, len(dr.Pools))}
	for name, pool := range dr.Pools {
		tainted := pool
		tainted.Slices = nil
		for _, s := range pool.Slices {
			tainted.Slices = append(tainted.Slices, taintSlice(s, taints)...)
		}
		out.Pools[name] = tainted
	}
	return out
}

// DeviceGPU is the UUID of the physical GPU behind a published device: a
// MIG device's parent, else the device's own (whole, shared, tenant slot).
func DeviceGPU(d resourceapi.Device) string { return deviceGPU(d) }

// DevicePlacement is the memory slices a published MIG device takes (its
// placement start and the memory-slice counters it consumes); ok is false
// for a device that is not a MIG placement.
func DevicePlacement(d resourceapi.Device) (pl inventory.MIGPlacement, ok bool) {
	start, ok := IntAttribute(d, AttrMIGPlacement)
	if !ok {
		return inventory.MIGPlacement{}, false
	}
	size := 0
	for _, c := range d.ConsumesCounters {
		for name := range c.Counters {
			if strings.HasPrefix(name, memorySlicePrefix) {
				size++
			}
		}
	}
	return inventory.MIGPlacement{Start: int(start), Size: size}, true
}

// taintSlice puts taints(d) on the slice's devices and splits the slice
// when it then has more devices than a slice with taints may.
func taintSlice(s resourceslice.Slice, taints func(resourceapi.Device) []resourceapi.DeviceTaint) []resourceslice.Slice {
	var devices []resourceapi.Device
	touched := false
	for _, d := range s.Devices {
		if add := taints(d); len(add) > 0 {
			d = *d.DeepCopy()
			for _, taint := range add {
				d.Taints = append(slices.DeleteFunc(d.Taints, func(t resourceapi.DeviceTaint) bool { return t.Key == taint.Key }), taint)
			}
			touched = true
		}
		devices = append(devices, d)
	}
	if !touched {
		return []resourceslice.Slice{s}
	}
	parts := chunks(devices, resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures)
	out := make([]resourceslice.Slice, len(parts))
	for i, part := range parts {
		// Counter sets stay with the first part; every part keeps the
		// slice's node selection.
		if i == 0 {
			out[i] = s
		}
		out[i].PerDeviceNodeSelection = s.PerDeviceNodeSelection
		out[i].Devices = part
	}
	return out
}

// memorySlicePrefix starts every MemorySliceCounter name.
const memorySlicePrefix = "memory-slice-"
