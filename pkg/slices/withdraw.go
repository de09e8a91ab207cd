package slices

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"
)

// Names of the upstream feature gates whose fields Tierra publishes, as
// resourceslice.DroppedFieldsError.DisabledFeatures reports them when the
// kube-apiserver has the gate off and drops the fields.
const (
	FeatureDeviceTaints         = "DRADeviceTaints"
	FeaturePartitionableDevices = "DRAPartitionableDevices"
	FeatureConsumableCapacity   = "DRAConsumableCapacity"
)

// Withdraw returns dr without the devices that need a feature the
// apiserver has off, so that what the scheduler sees never lets it
// allocate more than the hardware holds or what must not be allocated:
//
//   - DRAPartitionableDevices off: counters are dropped, so MIG placements
//     (any device that consumes counters) could be allocated overlapping;
//     they and the shared counters go.
//   - DRAConsumableCapacity off: a shared GPU would lose its capacity and
//     go whole to one claim of a sharing tier; shared devices go.
//   - DRADeviceTaints off: a tainted device (unhealthy, reshaping) would look
//     schedulable; tainted devices go.
//
// Other features are not ones Tierra publishes and change nothing. Slices
// left empty go. It returns how many devices went; dr is not changed.
func Withdraw(dr resourceslice.DriverResources, disabled sets.Set[string]) (resourceslice.DriverResources, int) {
	noCounters := disabled.Has(FeaturePartitionableDevices)
	drop := func(d resourceapi.Device) bool {
		return noCounters && len(d.ConsumesCounters) > 0 ||
			disabled.Has(FeatureConsumableCapacity) && d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations ||
			disabled.Has(FeatureDeviceTaints) && len(d.Taints) > 0
	}
	out := resourceslice.DriverResources{Pools: make(map[string]resourceslice.Pool, len(dr.Pools))}
	gone := 0
	for name, pool := range dr.Pools {
		kept := pool
		kept.Slices = nil
		for _, s := range pool.Slices {
			var devices []resourceapi.Device
			for _, d := range s.Devices {
				if drop(d) {
					gone++
					continue
				}
				devices = append(devices, d)
			}
			s.Devices = devices
			if noCounters {
				s.SharedCounters = nil
			}
			if len(s.Devices) > 0 || len(s.SharedCounters) > 0 {
				kept.Slices = append(kept.Slices, s)
			}
		}
		out.Pools[name] = kept
	}
	return out, gone
}
