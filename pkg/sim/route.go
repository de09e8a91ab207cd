package sim

import (
	"fmt"
	"strconv"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// routeKey identifies the pods that share one claim under a cluster.
type routeKey struct {
	numGPU, migSlices int
	milli             int64
	spec              string
}

func routeKeyOf(p Pod) routeKey {
	return routeKey{numGPU: p.NumGPU, migSlices: p.MIGSlices, milli: p.GPUMilli, spec: strings.Join(p.GPUSpec, "|")}
}

// ClaimFor is the ResourceClaim a trace pod's GPU demand becomes on the
// cluster (nil for a CPU-only pod). The pod claims one partitioning, the
// first of its preference the cluster has a tier of (see tierOrder): a
// mig_profile pod MIG, Shared, Whole; another fractional pod Shared, MIG,
// Whole; a whole-GPU pod Whole, Shared, MIG. Its one request names that
// tier's DeviceClass, or, when several tiers share the partitioning, is a
// prioritized list (firstAvailable) over them in policy order:
//
//   - Whole tier: numGPU exclusive GPUs.
//   - Shared tier: numGPU shares of compute gpu_milli (1000 for a whole
//     GPU) and the least memory (1Mi): the trace states compute, not GPU
//     memory.
//   - MIG tier: a MIG device of the pod's profile (mig_profile), else of
//     the smallest profile whose compute slices cover gpu_milli (1g: up to
//     142, 2g: 285, 3g: 428, 4g: 571, else 7g); numGPU 7g devices for a
//     whole-GPU pod. The plugin orders MIG devices smallest first, so of
//     a profile's memory sizes (1g.18gb, 1g.35gb) the allocator takes the
//     smallest that is free.
//
// gpu_spec becomes a productName selector, and the tenancy admission
// selectors for a namespace of no tenant are added as the chart's
// admission policy would.
func (c *Cluster) ClaimFor(p Pod, name string) (*resourceapi.ResourceClaim, error) {
	if p.NumGPU == 0 {
		return nil, nil
	}
	var subs []resourceapi.DeviceSubRequest
	for _, t := range c.tierOrder(p) {
		sub, ok := c.subrequest(p, t)
		if ok {
			subs = append(subs, sub)
		}
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("pod %s: no tier of %s can serve %d GPU(s) of %d milli (tiers: %s)", p.Name, c.Name, p.NumGPU, p.GPUMilli, strings.Join(c.TierNames(), ", "))
	}
	req := resourceapi.DeviceRequest{Name: "gpu"}
	if len(subs) == 1 {
		s := subs[0]
		req.Exactly = &resourceapi.ExactDeviceRequest{DeviceClassName: s.DeviceClassName, Selectors: s.Selectors,
			AllocationMode: s.AllocationMode, Count: s.Count, Capacity: s.Capacity}
	} else {
		req.FirstAvailable = subs
	}
	return &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "sim", UID: types.UID("claim-" + name)},
		Spec:       resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{req}}},
	}, nil
}

func (c *Cluster) subrequest(p Pod, t TierInfo) (resourceapi.DeviceSubRequest, bool) {
	sub := resourceapi.DeviceSubRequest{Name: t.Name, DeviceClassName: t.Class,
		AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: int64(p.NumGPU)}
	var sels []string
	switch t.Partitioning {
	case v1alpha1.PartitioningShared:
		sub.Capacity = &resourceapi.CapacityRequirements{Requests: map[resourceapi.QualifiedName]resource.Quantity{
			slices.CapCompute: *resource.NewQuantity(p.GPUMilli, resource.DecimalSI),
			slices.CapMemory:  *resource.NewQuantity(1<<20, resource.BinarySI),
		}}
	case v1alpha1.PartitioningMIG:
		g := MIGComputeSlices
		if p.Fractional() || p.MIGSlices > 0 {
			g = migSlicesFor(p)
		}
		sels = append(sels, fmt.Sprintf("%s.startsWith(%q)", slices.CELAttribute(slices.AttrMIGProfile), fmt.Sprintf("%dg.", g)))
	case v1alpha1.PartitioningWhole:
	default:
		return sub, false
	}
	if len(p.GPUSpec) > 0 {
		quoted := make([]string, len(p.GPUSpec))
		for i, m := range p.GPUSpec {
			quoted[i] = strconv.Quote(modelProduct(m))
		}
		sels = append(sels, fmt.Sprintf("%s in [%s]", slices.CELAttribute(slices.AttrProductName), strings.Join(quoted, ", ")))
	}
	sels = append(sels, c.Admission...)
	for _, s := range sels {
		sub.Selectors = append(sub.Selectors, resourceapi.DeviceSelector{CEL: &resourceapi.CELDeviceSelector{Expression: s}})
	}
	return sub, true
}

// migSlicesFor is the pod's MIG profile (compute slices): its mig_profile,
// else the smallest profile whose slices/7 cover gpu_milli.
func migSlicesFor(p Pod) int {
	if p.MIGSlices > 0 {
		return p.MIGSlices
	}
	for _, g := range migProfiles {
		if int64(g)*1000 >= p.GPUMilli*MIGComputeSlices {
			return g
		}
	}
	return MIGComputeSlices
}
