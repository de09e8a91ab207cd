package sim

import (
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// testPublish stands in for pkg/slices in tests: the Shared shape (one
// device per GPU, allowMultipleAllocations, memory and compute capacity).
func testPublish(name string, _ map[string]string, m inventory.Machine, _ *v1alpha1.TierPolicy) (resourceslice.DriverResources, error) {
	var devs []resourceapi.Device
	for _, g := range m.GPUs {
		devs = append(devs, resourceapi.Device{
			Name:                     fmt.Sprintf("gpu-%d", g.Index),
			AllowMultipleAllocations: ptr.To(true),
			Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
				"productName": {StringValue: ptr.To(g.ProductName)},
			},
			Capacity: map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
				"memory": {Value: *resource.NewQuantity(int64(g.MemoryBytes), resource.BinarySI), RequestPolicy: &resourceapi.CapacityRequestPolicy{
					Default:    resource.NewQuantity(1<<20, resource.BinarySI),
					ValidRange: &resourceapi.CapacityRequestPolicyRange{Min: resource.NewQuantity(1<<20, resource.BinarySI), Step: resource.NewQuantity(1<<20, resource.BinarySI)},
				}},
				"compute": {Value: *resource.NewQuantity(100, resource.DecimalSI), RequestPolicy: &resourceapi.CapacityRequestPolicy{
					Default:    resource.NewQuantity(100, resource.DecimalSI),
					ValidRange: &resourceapi.CapacityRequestPolicyRange{Min: resource.NewQuantity(1, resource.DecimalSI), Step: resource.NewQuantity(1, resource.DecimalSI)},
				}},
			},
		})
	}
	return resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
		name: {Slices: []resourceslice.Slice{{Devices: devs}}},
	}}, nil
}
