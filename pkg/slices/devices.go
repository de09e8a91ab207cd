package slices

import (
	"fmt"
	"strconv"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/dynamic-resource-allocation/deviceattribute"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cost"
)

// Attribute and capacity names, qualified with the driver name.
const (
	AttrUUID                  = DriverName + "/uuid"
	AttrIndex                 = DriverName + "/index"
	AttrProductName           = DriverName + "/productName"
	AttrArchitecture          = DriverName + "/architecture"
	AttrCUDAComputeCapability = DriverName + "/cudaComputeCapability"
	AttrDriverVersion         = DriverName + "/driverVersion"
	AttrNVLinkDomain          = DriverName + "/nvlinkDomain"
	AttrTier                  = DriverName + "/tier"
	AttrPartitioning          = DriverName + "/partitioning"
	AttrSharing               = DriverName + "/sharing"
	AttrCostPerHour           = DriverName + "/costPerHour"
	AttrCostPerComputeUnit    = DriverName + "/costPerComputeUnitHour"
	AttrMIGProfile            = DriverName + "/migProfile"
	AttrMIGPlacement          = DriverName + "/migPlacementStart"
	AttrParentUUID            = DriverName + "/parentUUID"

	CapMemory  = DriverName + "/memory"
	CapCompute = DriverName + "/compute"
)

// ComputeUnitsPerGPU is the "compute" capacity of a shared GPU: one unit is
// a thousandth of the GPU (milli-GPU), the unit FGD-style traces use. It is
// the unit pkg/cost prices shares in, so a claim pays for the compute it
// requests.
const ComputeUnitsPerGPU = cost.ComputeUnitsPerGPU

// setPrice publishes a device's price (cost.Whole, cost.Shared, cost.MIG)
// as its cost attributes: costPerHour, and for a device priced by compute
// unit costPerComputeUnitHour. DevicePrice reads them back.
func setPrice(attrs map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, p cost.Price) {
	attrs[AttrCostPerHour] = resourceapi.DeviceAttribute{IntValue: ptr.To(int64(p.PerHour))}
	if p.ByComputeUnit {
		attrs[AttrCostPerComputeUnit] = resourceapi.DeviceAttribute{IntValue: ptr.To(int64(p.PerComputeUnit))}
	}
}

// commonAttributes are the attributes of the GPU itself, carried by every
// device made from it (whole, shared or MIG).
func commonAttributes(pc gpuContext, sharing v1alpha1.SharingStrategy) map[resourceapi.QualifiedName]resourceapi.DeviceAttribute {
	g := pc.gpu
	attrs := map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
		AttrIndex:        {IntValue: ptr.To(int64(g.Index))},
		AttrProductName:  stringAttribute(g.ProductName),
		AttrArchitecture: stringAttribute(g.Architecture),
		AttrTier:         stringAttribute(pc.tier.Name),
		AttrPartitioning: stringAttribute(string(pc.tier.Partitioning)),
		AttrSharing:      stringAttribute(string(sharing)),
	}
	setVersion(attrs, AttrCUDAComputeCapability, g.CUDAComputeCapability)
	driver := g.DriverVersion
	if driver == "" {
		driver = pc.machine.DriverVersion
	}
	setVersion(attrs, AttrDriverVersion, driver)
	setString(attrs, AttrNVLinkDomain, g.NVLinkDomain)
	setString(attrs, deviceattribute.StandardDeviceAttributePCIeRoot, g.PCIeRoot)
	setString(attrs, deviceattribute.StandardDeviceAttributePCIBusID, g.PCIBusID)
	if g.NUMANode >= 0 {
		attrs[deviceattribute.StandardDeviceAttributeNUMANode] = resourceapi.DeviceAttribute{IntValue: ptr.To(int64(g.NUMANode))}
	}
	return attrs
}

func setString(attrs map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, name resourceapi.QualifiedName, v string) {
	if v != "" {
		attrs[name] = stringAttribute(v)
	}
}

// setVersion publishes "9.0" or "580.95.05" as the semver "9.0.0" or
// "580.95.5" so CEL can compare it with semver(); unparsable values are left out.
func setVersion(attrs map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, name resourceapi.QualifiedName, v string) {
	if s, ok := semver(v); ok {
		attrs[name] = resourceapi.DeviceAttribute{VersionValue: ptr.To(s)}
	}
}

func semver(v string) (string, bool) {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) == 0 || len(parts) > 3 {
		return "", false
	}
	nums := make([]string, 3)
	for i := range nums {
		nums[i] = "0"
		if i < len(parts) {
			n, err := strconv.ParseUint(parts[i], 10, 32)
			if err != nil {
				return "", false
			}
			nums[i] = strconv.FormatUint(n, 10)
		}
	}
	return strings.Join(nums, "."), true
}

func gpuDeviceName(index int) string { return fmt.Sprintf("gpu-%d", index) }

// wholeDevice is the GPU as one exclusive device.
func wholeDevice(pc gpuContext) resourceapi.Device {
	attrs := commonAttributes(pc, v1alpha1.SharingExclusive)
	attrs[AttrUUID] = stringAttribute(pc.gpu.UUID)
	if pc.priced {
		setPrice(attrs, cost.Whole(pc.price))
	}
	return resourceapi.Device{
		Name:       gpuDeviceName(pc.gpu.Index),
		Attributes: attrs,
		Capacity: map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
			CapMemory: {Value: *resource.NewQuantity(int64(pc.gpu.MemoryBytes), resource.BinarySI)},
		},
	}
}

// sharedDevice is the GPU as one device many claims of one tenant allocate
// from. Each claim consumes "memory" (bytes; default an eighth of the GPU,
// any whole MiB) and "compute" (milli-GPU; default 125, any value 1-1000).
// A claim that asks for all of either gets the GPU to itself in effect.
//
// It is priced by cost.Shared: costPerHour is the whole GPU's price, and
// costPerComputeUnitHour the price of a milli-GPU hour, which a claim pays
// for each unit of compute it requests.
func sharedDevice(pc gpuContext) (resourceapi.Device, error) {
	if pc.tier.Sharing == nil || pc.tier.Sharing.Strategy == v1alpha1.SharingExclusive {
		return resourceapi.Device{}, fmt.Errorf("tier %q: Shared partitioning needs sharing MPS or TimeSlicing", pc.tier.Name)
	}
	d := wholeDevice(pc)
	d.Attributes[AttrSharing] = stringAttribute(string(pc.tier.Sharing.Strategy))
	if pc.priced {
		setPrice(d.Attributes, cost.Shared(pc.price))
	}
	d.AllowMultipleAllocations = ptr.To(true)
	const mib = int64(1) << 20
	mem := int64(pc.gpu.MemoryBytes) / mib * mib
	d.Capacity = map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
		CapMemory: {
			Value: *resource.NewQuantity(mem, resource.BinarySI),
			RequestPolicy: &resourceapi.CapacityRequestPolicy{
				Default: resource.NewQuantity(mem/8/mib*mib, resource.BinarySI),
				ValidRange: &resourceapi.CapacityRequestPolicyRange{
					Min:  resource.NewQuantity(mib, resource.BinarySI),
					Step: resource.NewQuantity(mib, resource.BinarySI),
				},
			},
		},
		CapCompute: {
			Value: *resource.NewQuantity(ComputeUnitsPerGPU, resource.DecimalSI),
			RequestPolicy: &resourceapi.CapacityRequestPolicy{
				Default: resource.NewQuantity(ComputeUnitsPerGPU/8, resource.DecimalSI),
				ValidRange: &resourceapi.CapacityRequestPolicyRange{
					Min:  resource.NewQuantity(1, resource.DecimalSI),
					Step: resource.NewQuantity(1, resource.DecimalSI),
				},
			},
		},
	}
	return d, nil
}
