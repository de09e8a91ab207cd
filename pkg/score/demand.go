package score

import (
	"context"
	"fmt"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/cel"
)

// ClassGetter looks a DeviceClass up by name.
type ClassGetter func(name string) (*resourceapi.DeviceClass, error)

// Demand is a pod's unallocated device requests, resolved against a shape
// table: what each request consumes per shape, and the CEL selectors (of
// its class and its own) a device must pass.
type Demand struct {
	requests  []Request
	selectors [][]cel.CompilationResult
	// keys[i] names request i's selectors, for the devices' memo.
	keys []string
}

// NewDemand reads the device requests of the pod's claims that are not
// allocated yet. A request with a prioritized list is read as its first
// subrequest (what the allocator tries first); a request for All devices
// cannot be predicted and is left out.
func NewDemand(claims []*resourceapi.ResourceClaim, getClass ClassGetter, cache *cel.Cache, shapes []Shape) (*Demand, error) {
	d := &Demand{}
	for _, c := range claims {
		if c == nil || c.Status.Allocation != nil {
			continue
		}
		for _, r := range c.Spec.Devices.Requests {
			exact := r.Exactly
			if exact == nil && len(r.FirstAvailable) > 0 {
				sub := r.FirstAvailable[0]
				exact = &resourceapi.ExactDeviceRequest{DeviceClassName: sub.DeviceClassName, Selectors: sub.Selectors,
					AllocationMode: sub.AllocationMode, Count: sub.Count, Capacity: sub.Capacity}
			}
			if exact == nil || exact.AllocationMode == resourceapi.DeviceAllocationModeAll {
				continue
			}
			if err := d.add(c, r.Name, exact, getClass, cache, shapes); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

func (d *Demand) add(c *resourceapi.ResourceClaim, name string, r *resourceapi.ExactDeviceRequest, getClass ClassGetter, cache *cel.Cache, shapes []Shape) error {
	class, err := getClass(r.DeviceClassName)
	if err != nil {
		return fmt.Errorf("claim %s/%s request %s: device class %s: %w", c.Namespace, c.Name, name, r.DeviceClassName, err)
	}
	var sels []cel.CompilationResult
	var key strings.Builder
	for _, s := range append(append([]resourceapi.DeviceSelector{}, class.Spec.Selectors...), r.Selectors...) {
		if s.CEL == nil {
			continue
		}
		key.WriteString(s.CEL.Expression)
		key.WriteByte(0)
		res := cache.GetOrCompile(s.CEL.Expression)
		if res.Error != nil {
			return fmt.Errorf("claim %s/%s request %s: selector %q: %w", c.Namespace, c.Name, name, s.CEL.Expression, res.Error)
		}
		sels = append(sels, res)
	}
	milli := map[resourceapi.QualifiedName]int64{}
	if r.Capacity != nil {
		for n, q := range r.Capacity.Requests {
			milli[n] = q.MilliValue()
		}
	}
	count := int(r.Count)
	if r.AllocationMode == "" || count == 0 {
		count = 1
	}
	req := Request{Count: count, Need: make([][]int64, len(shapes)), Takes: make([]int64, len(shapes))}
	for s := range shapes {
		req.Need[s] = shapes[s].Need(milli)
		req.Takes[s] = shapes[s].ShareOf(req.Need[s])
	}
	d.requests = append(d.requests, req)
	d.selectors = append(d.selectors, sels)
	d.keys = append(d.keys, key.String())
	return nil
}

// Empty reports whether the pod asks for no new devices.
func (d *Demand) Empty() bool { return len(d.requests) == 0 }

// On is the pod as the scorer sees it on one node: the requests' selectors
// are evaluated (lazily) on that node's devices.
func (d *Demand) On(ctx context.Context, milliCPU, memory int64, devs []Device) *Pod {
	p := &Pod{MilliCPU: milliCPU, Memory: memory, Requests: make([]Request, len(d.requests))}
	for i, r := range d.requests {
		if sels, key := d.selectors[i], d.keys[i]; len(sels) > 0 {
			r.Match = func(j int) bool { return matches(ctx, sels, key, &devs[j]) }
		}
		p.Requests[i] = r
	}
	return p
}

// matches evaluates the selectors on the device, once per slice version.
func matches(ctx context.Context, sels []cel.CompilationResult, key string, d *Device) bool {
	if ok, found := d.memo.get(key); found {
		return ok
	}
	ok := evaluate(ctx, sels, d)
	d.memo.put(key, ok)
	return ok
}

func evaluate(ctx context.Context, sels []cel.CompilationResult, d *Device) bool {
	in := cel.Device{Driver: d.Driver, AllowMultipleAllocations: d.Spec.AllowMultipleAllocations, Attributes: d.Spec.Attributes, Capacity: d.Spec.Capacity}
	for _, s := range sels {
		ok, _, err := s.DeviceMatches(ctx, in)
		if err != nil || !ok {
			return false
		}
	}
	return true
}
