package tierratest

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// UID sets the claim's UID (MakeClaim's default contains a "/", which
// checkpoint and CDI file names reject).
func (w *ClaimWrapper) UID(uid string) *ClaimWrapper {
	w.ObjectMeta.UID = types.UID(uid)
	return w
}

// Config adds opaque gpu.tierra.dev config (raw JSON) for the requests
// (none: all requests).
func (w *ClaimWrapper) Config(raw string, requests ...string) *ClaimWrapper {
	w.Spec.Devices.Config = append(w.Spec.Devices.Config, resourceapi.DeviceClaimConfiguration{
		Requests: requests,
		DeviceConfiguration: resourceapi.DeviceConfiguration{Opaque: &resourceapi.OpaqueDeviceConfiguration{
			Driver: v1alpha1.DriverName, Parameters: runtime.RawExtension{Raw: []byte(raw)},
		}},
	})
	return w
}
