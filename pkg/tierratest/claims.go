package tierratest

import (
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ClaimWrapper builds a ResourceClaim: MakeClaim("c", "ns").Request("gpu",
// "inference.gpu.tierra.dev").Obj().
type ClaimWrapper struct{ resourceapi.ResourceClaim }

// MakeClaim starts a claim with a UID derived from its name.
func MakeClaim(name, namespace string) *ClaimWrapper {
	return &ClaimWrapper{resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: namespace, UID: types.UID(namespace + "/" + name),
	}}}
}

// Obj returns the claim.
func (w *ClaimWrapper) Obj() *resourceapi.ResourceClaim { return &w.ResourceClaim }

// Request adds an exact request for one device of the class.
func (w *ClaimWrapper) Request(name, class string) *ClaimWrapper {
	w.Spec.Devices.Requests = append(w.Spec.Devices.Requests, resourceapi.DeviceRequest{
		Name: name,
		Exactly: &resourceapi.ExactDeviceRequest{
			DeviceClassName: class, AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 1,
		},
	})
	return w
}

// FirstAvailable adds a request whose subrequests are tried in order.
func (w *ClaimWrapper) FirstAvailable(name string, subs ...resourceapi.DeviceSubRequest) *ClaimWrapper {
	w.Spec.Devices.Requests = append(w.Spec.Devices.Requests, resourceapi.DeviceRequest{Name: name, FirstAvailable: subs})
	return w
}

// Sub is a one-device subrequest for FirstAvailable, with optional CEL selectors.
func Sub(name, class string, cel ...string) resourceapi.DeviceSubRequest {
	return resourceapi.DeviceSubRequest{
		Name: name, DeviceClassName: class, AllocationMode: resourceapi.DeviceAllocationModeExactCount,
		Count: 1, Selectors: selectors(cel),
	}
}

// Count sets the device count of the last request.
func (w *ClaimWrapper) Count(n int64) *ClaimWrapper {
	w.last().Count = n
	return w
}

// AdminAccess makes the last request an admin-access (monitoring) request:
// the namespace needs resource.kubernetes.io/admin-access=true.
func (w *ClaimWrapper) AdminAccess() *ClaimWrapper {
	yes := true
	w.last().AdminAccess = &yes
	return w
}

// Selector adds a CEL selector to the last request.
func (w *ClaimWrapper) Selector(cel string) *ClaimWrapper {
	r := w.last()
	r.Selectors = append(r.Selectors, selectors([]string{cel})...)
	return w
}

// Capacity asks the last request for an amount of a consumable capacity.
func (w *ClaimWrapper) Capacity(name resourceapi.QualifiedName, q string) *ClaimWrapper {
	r := w.last()
	if r.Capacity == nil {
		r.Capacity = &resourceapi.CapacityRequirements{Requests: map[resourceapi.QualifiedName]resource.Quantity{}}
	}
	r.Capacity.Requests[name] = resource.MustParse(q)
	return w
}

// MatchAttribute constrains all requests to devices agreeing on the attribute.
func (w *ClaimWrapper) MatchAttribute(attr resourceapi.FullyQualifiedName) *ClaimWrapper {
	w.Spec.Devices.Constraints = append(w.Spec.Devices.Constraints, resourceapi.DeviceConstraint{MatchAttribute: &attr})
	return w
}

func (w *ClaimWrapper) last() *resourceapi.ExactDeviceRequest {
	reqs := w.Spec.Devices.Requests
	if len(reqs) == 0 || reqs[len(reqs)-1].Exactly == nil {
		panic("ClaimWrapper: Count/Selector/Capacity need a preceding Request")
	}
	return reqs[len(reqs)-1].Exactly
}

func selectors(cel []string) []resourceapi.DeviceSelector {
	var out []resourceapi.DeviceSelector
	for _, expr := range cel {
		out = append(out, resourceapi.DeviceSelector{CEL: &resourceapi.CELDeviceSelector{Expression: expr}})
	}
	return out
}
