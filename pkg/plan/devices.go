package plan

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// device is what the plan needs to know about a published device.
type device struct {
	tier        string
	cost        int64
	costPerUnit int64
	// gpus is the device's size in GPU-equivalents.
	gpus float64
}

// charge is the cost per hour and the GPU-equivalents of one allocation of
// the device; consumed is set for a share of a shared device.
func (d device) charge(consumed map[resourceapi.QualifiedName]resource.Quantity) (v1alpha1.MicroDollars, float64) {
	compute, ok := consumed[resourceapi.QualifiedName(slices.CapCompute)]
	if !ok {
		return v1alpha1.MicroDollars(d.cost), d.gpus
	}
	units := compute.Value()
	return v1alpha1.MicroDollars(units * d.costPerUnit), float64(units) / slices.ComputeUnitsPerGPU
}

type deviceIndex struct{ devices map[[2]string]device }

func newDeviceIndex() *deviceIndex { return &deviceIndex{devices: map[[2]string]device{}} }

func (x *deviceIndex) get(pool, name string) device { return x.devices[[2]string{pool, name}] }

// add indexes a node's published devices and returns how many there are.
func (x *deviceIndex) add(n slices.Node, objs []*resourceapi.ResourceSlice) int {
	count := 0
	for _, s := range objs {
		for _, d := range s.Spec.Devices {
			x.devices[[2]string{s.Spec.Pool.Name, d.Name}] = device{
				tier:        slices.StringAttribute(d, slices.AttrTier),
				cost:        intAttr(d, slices.AttrCostPerHour),
				costPerUnit: intAttr(d, slices.AttrCostPerComputeUnit),
				gpus:        gpuShare(n, d),
			}
			count++
		}
	}
	return count
}

// gpuShare is a device's size in GPUs: a MIG device covers its memory
// slices out of the GPU's.
func gpuShare(n slices.Node, d resourceapi.Device) float64 {
	parent := slices.StringAttribute(d, slices.AttrParentUUID)
	if parent == "" {
		return 1
	}
	gpu, ok := n.Machine.GPU(parent)
	if !ok || gpu.MIG == nil || gpu.MIG.MemorySlices == 0 {
		return 1
	}
	profile, ok := gpu.MIG.Profile(slices.StringAttribute(d, slices.AttrMIGProfile))
	if !ok {
		return 1
	}
	return float64(profile.MemorySlices) / float64(gpu.MIG.MemorySlices)
}

// intAttr is an int attribute of the device, 0 when absent (no price).
func intAttr(d resourceapi.Device, name resourceapi.QualifiedName) int64 {
	v, _ := slices.IntAttribute(d, name)
	return v
}
