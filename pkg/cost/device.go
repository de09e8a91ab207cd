package cost

import (
	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// ComputeUnitsPerGPU is how many compute units a GPU's price is split
// into: one unit is a thousandth of the GPU (milli-GPU), the unit FGD-style
// traces use. A shared device's "compute" capacity is counted in the same
// units (slices.ComputeUnitsPerGPU), so a claim pays for what it requests.
const ComputeUnitsPerGPU = 1000

// Price is what a published device costs, as its cost attributes say.
type Price struct {
	// PerHour is the costPerHour attribute: the price of an hour of the
	// device allocated whole (for a shared device, of the whole GPU).
	PerHour v1alpha1.MicroDollars
	// PerComputeUnit is the costPerComputeUnitHour attribute of a shared
	// device: the price of one compute unit for an hour.
	PerComputeUnit v1alpha1.MicroDollars
	// ByComputeUnit is true for a device many claims share: each pays for
	// the compute units it consumes, not PerHour.
	ByComputeUnit bool
}

// Whole is the price of a GPU published as one exclusive device: the GPU's.
func Whole(gpuPerHour v1alpha1.MicroDollars) Price {
	return Price{PerHour: gpuPerHour}
}

// Shared is the price of a GPU published as one device that claims share
// by capacity: what a claim pays depends on the share it requests, which
// is not known at publish time, so the device carries the whole GPU's
// price and the price of one compute unit (rounded down to the
// micro-dollar).
func Shared(gpuPerHour v1alpha1.MicroDollars) Price {
	return Price{PerHour: gpuPerHour, PerComputeUnit: gpuPerHour / ComputeUnitsPerGPU, ByComputeUnit: true}
}

// MIG is the price of a MIG device of profile p on gpu: the GPU's price
// pro-rated by memory slices (price × the profile's slices / the GPU's,
// rounded down). Memory slices are what a placement takes away from other
// claims (a 1g.35gb blocks as much as a 2g.35gb), and the 7g profile, which
// takes all of them, costs exactly the whole GPU. Zero for a GPU without
// MIG geometry.
func MIG(gpuPerHour v1alpha1.MicroDollars, p inventory.MIGProfile, gpu inventory.GPU) Price {
	if gpu.MIG == nil || gpu.MIG.MemorySlices == 0 {
		return Price{}
	}
	return Price{PerHour: gpuPerHour * v1alpha1.MicroDollars(p.MemorySlices) / v1alpha1.MicroDollars(gpu.MIG.MemorySlices)}
}

// Allocation is the price per hour of one allocation of the device:
// PerHour for a device allocated whole (an exclusive GPU, a MIG slice),
// and for a share of a shared device the compute units it consumes times
// PerComputeUnit (computeUnits is ignored otherwise).
func (p Price) Allocation(computeUnits int64) v1alpha1.MicroDollars {
	if !p.ByComputeUnit {
		return p.PerHour
	}
	return v1alpha1.MicroDollars(computeUnits) * p.PerComputeUnit
}
