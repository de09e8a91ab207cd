// Package slices turns a node's GPU inventory and the cluster's TierPolicy
// into the ResourceSlices the kubelet plugin publishes for driver
// gpu.tierra.dev. It is pure (no I/O, CGO_ENABLED=0) so the publisher, the
// simulator and the tests all see exactly the same devices.
//
// Each GPU serves the first tier whose selector matches it and is published
// according to that tier's partitioning:
//
// The tier is defaulted (v1alpha1.Tier.Default) before use, so a Shared
// tier without sharing time-slices.
//
//   - Whole: one exclusive device gpu-<index>.
//   - Shared: one device gpu-<index> with allowMultipleAllocations and
//     consumable capacity "memory" (bytes) and "compute" (milli-GPU, 1000 =
//     the whole GPU), both with a request policy.
//   - MIG (GPU in MIG mode): a counter set per GPU in counter-only slices and
//     one device per (profile, placement) consuming the placement's counters;
//     the plugin creates the instance at prepare time. A MIG tier on a GPU
//     that is not in MIG mode publishes the GPU whole: switching MIG mode
//     needs a GPU reset, which prepare must not do.
//
// GPUs that match no tier are not published. Prices come from pkg/cost
// (cost.PerGPUHour, then cost.Whole, cost.Shared or cost.MIG per device);
// a GPU the price book has no price for is published without cost
// attributes.
//
// The package both builds devices (build.go, devices.go, mig.go,
// tenants.go) and reads published ones back (index.go: Index, DevicePrice,
// the attribute readers in attributes.go): the reader is the inverse of the
// builder's attribute and counter schema, so the two stay in one package.
package slices

import (
	"errors"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cost"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// DriverName is the DRA driver the devices are published for.
const DriverName = v1alpha1.DriverName

// Node is what Build needs to know about the node it publishes for.
type Node struct {
	Name    string
	Labels  map[string]string
	Machine inventory.Machine
}

// Options tune what Build publishes. The zero value is the default.
type Options struct {
	// MediaExtensions also publishes the "+me" MIG profiles (a 1g slice that
	// owns the GPU's media engines). Off by default: they add a device per
	// 1g placement for a rare need, and every extra device is paid for by
	// every MIG claim the scheduler places on the node.
	MediaExtensions bool
}

// Build returns the node's devices for driver gpu.tierra.dev: one pool
// named after the node.
func Build(node Node, policy *v1alpha1.TierPolicy) (resourceslice.DriverResources, error) {
	return BuildWithOptions(node, policy, Options{})
}

// BuildWithOptions is Build with non-default Options.
func BuildWithOptions(node Node, policy *v1alpha1.TierPolicy, opts Options) (resourceslice.DriverResources, error) {
	if policy == nil {
		return resourceslice.DriverResources{}, fmt.Errorf("node %s: no TierPolicy", node.Name)
	}
	var plain, slotted []resourceapi.Device
	var mig []migDevice
	var counters []resourceapi.CounterSet
	for _, gpu := range node.Machine.GPUs {
		pub, err := publishGPU(node, policy, gpu, opts)
		if err != nil {
			return resourceslice.DriverResources{}, fmt.Errorf("node %s: GPU %d (%s): %w", node.Name, gpu.Index, gpu.UUID, err)
		}
		plain = append(plain, pub.plain...)
		slotted = append(slotted, pub.slotted...)
		mig = append(mig, pub.mig...)
		counters = append(counters, pub.counters...)
	}
	sortMIGDevices(mig)
	advanced := slotted
	for i := range mig {
		advanced = append(advanced, mig[i].Device)
	}
	pool := resourceslice.Pool{Slices: layoutSlices(plain, counters, advanced)}
	return resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{node.Name: pool}}, nil
}

// published is what one GPU contributes to the pool.
type published struct {
	plain []resourceapi.Device
	// slotted are a soft-shared GPU's tenant slots (tenants.go).
	slotted  []resourceapi.Device
	mig      []migDevice
	counters []resourceapi.CounterSet
}

func publishGPU(node Node, policy *v1alpha1.TierPolicy, gpu inventory.GPU, opts Options) (published, error) {
	nodeLabels := labels.Set(node.Labels)
	matched, err := policy.TierFor(gpu.ProductName, gpu.MemoryBytes, nodeLabels)
	if err != nil || matched == nil {
		return published{}, err
	}
	// Default a copy: Build never changes the caller's policy.
	tier := *matched
	tier.Sharing = matched.Sharing.DeepCopy()
	tier.Default()
	price, err := cost.PerGPUHour(policy.Spec.PriceBook, gpu.ProductName, nodeLabels)
	if err != nil && !errors.Is(err, cost.ErrNoPrice) {
		return published{}, err
	}
	pc := gpuContext{machine: node.Machine, gpu: gpu, tier: &tier, price: price, priced: err == nil}
	switch tier.Partitioning {
	case v1alpha1.PartitioningWhole:
		return published{plain: []resourceapi.Device{wholeDevice(pc)}}, nil
	case v1alpha1.PartitioningShared:
		dev, err := sharedDevice(pc)
		if err != nil {
			return published{}, err
		}
		slots := TenantSlots(policy, tier.Name)
		if slots == nil {
			return published{plain: []resourceapi.Device{dev}}, nil
		}
		devs, set := tenantDevices(dev, gpu.Index, slots)
		return published{slotted: devs, counters: []resourceapi.CounterSet{set}}, nil
	case v1alpha1.PartitioningMIG:
		if !gpu.MIGEnabled || gpu.MIG == nil {
			return published{plain: []resourceapi.Device{wholeDevice(pc)}}, nil
		}
		return migDevices(pc, opts)
	default:
		return published{}, fmt.Errorf("tier %q: unknown partitioning %q", tier.Name, tier.Partitioning)
	}
}

// gpuContext is one GPU with the tier it serves and its price per GPU-hour.
type gpuContext struct {
	machine inventory.Machine
	gpu     inventory.GPU
	tier    *v1alpha1.Tier
	price   v1alpha1.MicroDollars
	// priced is false when the price book has no price for the GPU: its
	// devices then carry no cost attributes rather than a made-up zero.
	priced bool
}

// layoutSlices splits the pool into slices the apiserver accepts: plain
// devices in slices of at most ResourceSliceMaxDevices, counter sets in
// counter-only slices of at most ResourceSliceMaxCounterSets, devices that
// consume counters (tenant slots, MIG) in slices of at most
// ResourceSliceMaxDevicesWithAdvancedFeatures. Slice order is first-fit
// order, so the order inside each group is kept.
func layoutSlices(plain []resourceapi.Device, counters []resourceapi.CounterSet, devices []resourceapi.Device) []resourceslice.Slice {
	var out []resourceslice.Slice
	for _, chunk := range chunks(plain, resourceapi.ResourceSliceMaxDevices) {
		out = append(out, resourceslice.Slice{Devices: chunk})
	}
	for _, chunk := range chunks(counters, resourceapi.ResourceSliceMaxCounterSets) {
		out = append(out, resourceslice.Slice{SharedCounters: chunk})
	}
	for _, chunk := range chunks(devices, resourceapi.ResourceSliceMaxDevicesWithAdvancedFeatures) {
		out = append(out, resourceslice.Slice{Devices: chunk})
	}
	if len(out) == 0 {
		// An empty pool says "driver up, no devices", unlike no pool.
		out = append(out, resourceslice.Slice{})
	}
	return out
}

func chunks[T any](items []T, size int) [][]T {
	var out [][]T
	for len(items) > 0 {
		n := min(size, len(items))
		out = append(out, items[:n:n])
		items = items[n:]
	}
	return out
}
