package slices

import (
	"fmt"
	"slices"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/utils/ptr"
)

// ResourceSlices renders node-local DriverResources as the ResourceSlice
// objects the upstream resourceslice controller would create for nodeName:
// names start with the slice's index in hex, zero-padded, so sorting by name
// keeps the pool's slice order (the allocator's first-fit order); pools are
// taken in name order. The simulator and the tests feed these to the
// allocator and to the apiserver's validation.
func ResourceSlices(nodeName string, dr resourceslice.DriverResources) []*resourceapi.ResourceSlice {
	pools := make([]string, 0, len(dr.Pools))
	for name := range dr.Pools {
		pools = append(pools, name)
	}
	slices.Sort(pools)
	var out []*resourceapi.ResourceSlice
	for _, poolName := range pools {
		pool := dr.Pools[poolName]
		width := max(4, len(fmt.Sprintf("%x", max(len(pool.Slices)-1, 0))))
		for i, s := range pool.Slices {
			out = append(out, &resourceapi.ResourceSlice{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%0*x-%s-%s", width, i, DriverName, poolName)},
				Spec: resourceapi.ResourceSliceSpec{
					Driver: DriverName,
					Pool: resourceapi.ResourcePool{
						Name: poolName, Generation: pool.Generation, ResourceSliceCount: int64(len(pool.Slices)),
					},
					NodeName:               ptr.To(nodeName),
					Devices:                s.Devices,
					SharedCounters:         s.SharedCounters,
					PerDeviceNodeSelection: s.PerDeviceNodeSelection,
				},
			})
		}
	}
	return out
}
