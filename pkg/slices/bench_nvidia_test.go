package slices_test

import (
	"fmt"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// The dynamic-MIG shape NVIDIA's DRA driver publishes, rebuilt here for the
// benchmark only: per GPU one counter set (memory bytes, each memory slice,
// multiprocessors and every engine kind), a device per profile x placement
// including the +me profiles, and the full GPU consuming everything — 26
// devices per H200, 208 per node, GPU by GPU in NVML order.

const nvidiaDriver = "gpu.nvidia.com"

func nvQuantity(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.DecimalSI) }

// nvidiaConsumption is what one device takes from its GPU's counter set.
func nvidiaConsumption(memBytes uint64, slices []int, p inventory.MIGProfile) map[string]resourceapi.Counter {
	c := map[string]resourceapi.Counter{
		"memory":          {Value: nvQuantity(int64(memBytes))},
		"multiprocessors": {Value: nvQuantity(int64(p.Multiprocessors))},
		"copy-engines":    {Value: nvQuantity(int64(p.CopyEngines))},
		"decoders":        {Value: nvQuantity(int64(p.Decoders))},
		"encoders":        {Value: nvQuantity(int64(p.Encoders))},
		"jpeg-engines":    {Value: nvQuantity(int64(p.JPEGs))},
		"ofa-engines":     {Value: nvQuantity(int64(p.OFAs))},
	}
	for _, s := range slices {
		c[fmt.Sprintf("memory-slice-%d", s)] = resourceapi.Counter{Value: nvQuantity(1)}
	}
	return c
}

func nvidiaDevice(name, kind string, g inventory.GPU, profile string, memBytes uint64, set string, consumes map[string]resourceapi.Counter) resourceapi.Device {
	str := func(s string) resourceapi.DeviceAttribute { return resourceapi.DeviceAttribute{StringValue: ptr.To(s)} }
	return resourceapi.Device{
		Name: name,
		Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
			"type": str(kind), "uuid": str(g.UUID), "productName": str(g.ProductName),
			"architecture": str(g.Architecture), "profile": str(profile),
			"index":                           {IntValue: ptr.To(int64(g.Index))},
			"cudaComputeCapability":           {VersionValue: ptr.To("9.0.0")},
			"driverVersion":                   {VersionValue: ptr.To("580.95.5")},
			"resource.kubernetes.io/pcieRoot": str(g.PCIeRoot),
		},
		Capacity:         map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{"memory": {Value: *resource.NewQuantity(int64(memBytes), resource.BinarySI)}},
		ConsumesCounters: []resourceapi.DeviceCounterConsumption{{CounterSet: set, Counters: consumes}},
	}
}

// nvidiaResources builds the NVIDIA shape for a machine of MIG GPUs.
func nvidiaResources(node string, m inventory.Machine) resourceslice.DriverResources {
	var sets []resourceapi.CounterSet
	var devices []resourceapi.Device
	for _, g := range m.GPUs {
		full, _ := g.MIG.Profile(fullProfile(g.MIG))
		set := fmt.Sprintf("gpu-%d-counters", g.Index)
		all := make([]int, g.MIG.MemorySlices)
		for i := range all {
			all[i] = i
		}
		total := nvidiaConsumption(g.MemoryBytes, all, full)
		sets = append(sets, resourceapi.CounterSet{Name: set, Counters: total})
		devices = append(devices, nvidiaDevice(fmt.Sprintf("gpu-%d", g.Index), "gpu", g, "", g.MemoryBytes, set, total))
		for _, p := range g.MIG.Profiles {
			for _, pl := range p.Placements {
				var sl []int
				for i := pl.Start; i < pl.End(); i++ {
					sl = append(sl, i)
				}
				name := fmt.Sprintf("gpu-%d-mig-%s-%d", g.Index, strings.NewReplacer(".", "-", "+", "-").Replace(p.Name), pl.Start)
				devices = append(devices, nvidiaDevice(name, "mig", g, p.Name, p.MemoryBytes, set, nvidiaConsumption(p.MemoryBytes, sl, p)))
			}
		}
	}
	var out []resourceslice.Slice
	for i := 0; i < len(sets); i += resourceapi.ResourceSliceMaxCounterSets {
		out = append(out, resourceslice.Slice{SharedCounters: sets[i:min(i+resourceapi.ResourceSliceMaxCounterSets, len(sets))]})
	}
	for i := 0; i < len(devices); i += resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures {
		out = append(out, resourceslice.Slice{Devices: devices[i:min(i+resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures, len(devices))]})
	}
	return resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{node: {Slices: out}}}
}

// nvidiaSlices renders the NVIDIA shape as ResourceSlice objects.
func nvidiaSlices(node string, m inventory.Machine) []*resourceapi.ResourceSlice {
	out := tslices.ResourceSlices(node, nvidiaResources(node, m))
	for _, s := range out {
		s.Spec.Driver = nvidiaDriver
		s.Name = strings.Replace(s.Name, tslices.DriverName, nvidiaDriver, 1)
	}
	return out
}

func fullProfile(mig *inventory.MIGInfo) string {
	best := mig.Profiles[0]
	for _, p := range mig.Profiles {
		if p.MemorySlices > best.MemorySlices {
			best = p
		}
	}
	return best.Name
}

var nvidiaMIGClass = &resourceapi.DeviceClass{
	ObjectMeta: metav1.ObjectMeta{Name: "mig.nvidia.com"},
	Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{
		Expression: `device.driver == "gpu.nvidia.com" && device.attributes["gpu.nvidia.com"].type == "mig"`,
	}}}},
}

var nvidiaGPUClass = &resourceapi.DeviceClass{
	ObjectMeta: metav1.ObjectMeta{Name: "gpu.nvidia.com"},
	Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{
		Expression: `device.driver == "gpu.nvidia.com" && device.attributes["gpu.nvidia.com"].type == "gpu"`,
	}}}},
}
