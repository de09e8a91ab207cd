package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/pkg/slices"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ClassName is the DeviceClass every simulated claim uses.
const ClassName = "gpu.tierra.dev"

// deviceClass selects every device of the driver.
func deviceClass() *resourceapi.DeviceClass {
	return &resourceapi.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: ClassName},
		Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{
			CEL: &resourceapi.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", DriverName)},
		}}},
	}
}

// claimKey identifies the pods that share one claim shape.
type claimKey struct {
	numGPU int
	milli  int64
	spec   string
}

// claimClass is one claim shape: the ResourceClaim handed to the
// allocator, and what it consumes on each GPU shape (mirroring the
// allocator's rounding, for the prefilter and the scorers).
type claimClass struct {
	key     claimKey
	claim   *resourceapi.ResourceClaim
	allowed []bool    // per shape: may this claim use it (gpu_spec)
	need    [][]int64 // per shape: consumed milli-units per dim
}

// claimClasses builds and caches claim classes for one published cluster.
type claimClasses struct {
	shapes  []shape
	byKey   map[claimKey]*claimClass
	counter int
}

func newClaimClasses(shapes []shape) *claimClasses {
	return &claimClasses{shapes: shapes, byKey: map[claimKey]*claimClass{}}
}

func (c *claimClasses) get(p Pod) (*claimClass, error) {
	if p.NumGPU == 0 {
		return nil, nil
	}
	key := claimKey{numGPU: p.NumGPU, milli: p.GPUMilli, spec: strings.Join(p.GPUSpec, "|")}
	if cc, ok := c.byKey[key]; ok {
		return cc, nil
	}
	cc, err := c.build(key, p.GPUSpec)
	if err != nil {
		return nil, err
	}
	c.byKey[key] = cc
	return cc, nil
}

// build turns a pod's GPU demand into a claim. Whole GPUs: an ExactCount
// request of numGPU devices, each taking the full compute capacity.
// Fractional: one device, compute share = gpu_milli. Other capacities
// (memory) are requested at their least valid value: the trace states a
// GPU share, not GPU memory.
func (c *claimClasses) build(key claimKey, spec []string) (*claimClass, error) {
	cc := &claimClass{key: key}
	ref := c.shapes[0]
	requests := map[resourceapi.QualifiedName]resource.Quantity{}
	for k, d := range ref.dims {
		var milli int64
		if k == ref.compute {
			milli = ceilDiv(d.capacity*key.milli, 1000)
		}
		requests[d.name] = *resource.NewMilliQuantity(milli, resource.DecimalSI)
	}
	for _, sh := range c.shapes {
		if sh.dims[sh.compute].capacity != ref.dims[ref.compute].capacity || sh.dims[sh.compute].name != ref.dims[ref.compute].name {
			return nil, fmt.Errorf("GPU products %q and %q publish different compute capacities; one claim cannot ask both for the same share", ref.product, sh.product)
		}
		need := make([]int64, len(sh.dims))
		for k, d := range sh.dims {
			q := requests[d.name]
			need[k] = consumedMilli(q.MilliValue(), d)
		}
		cc.need = append(cc.need, need)
		cc.allowed = append(cc.allowed, len(spec) == 0 || containsProduct(spec, sh.product))
	}
	req := resourceapi.ExactDeviceRequest{
		DeviceClassName: ClassName,
		AllocationMode:  resourceapi.DeviceAllocationModeExactCount,
		Count:           int64(key.numGPU),
		Capacity:        &resourceapi.CapacityRequirements{Requests: requests},
	}
	if len(spec) > 0 {
		req.Selectors = []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: productSelector(spec)}}}
	}
	c.counter++
	name := fmt.Sprintf("gpu-%d-%d-%d", key.numGPU, key.milli, c.counter)
	cc.claim = &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "sim", UID: types.UID("claim-" + name)},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{
			Requests: []resourceapi.DeviceRequest{{Name: "gpu", Exactly: &req}},
		}},
	}
	return cc, nil
}

// productSelector is the CEL expression that honours a pod's gpu_spec.
func productSelector(spec []string) string {
	quoted := make([]string, len(spec))
	for i, m := range spec {
		quoted[i] = strconv.Quote(models[m].ProductName)
	}
	return fmt.Sprintf("%s in [%s]", slices.CELAttribute(slices.AttrProductName), strings.Join(quoted, ", "))
}

func containsProduct(spec []string, product string) bool {
	for _, m := range spec {
		if models[m].ProductName == product {
			return true
		}
	}
	return false
}

// consumedMilli mirrors how the allocator turns a requested amount into a
// consumed amount under the capacity's request policy (round up to the
// range's step or to the next valid value).
func consumedMilli(req int64, d dim) int64 {
	p := d.policy
	switch {
	case p == nil:
		return req
	case p.ValidRange != nil && p.ValidRange.Min != nil:
		lo := p.ValidRange.Min.MilliValue()
		if req < lo {
			return lo
		}
		if p.ValidRange.Step == nil {
			return req
		}
		step := p.ValidRange.Step.MilliValue()
		return lo + ceilDiv(req-lo, step)*step
	case len(p.ValidValues) > 0:
		for _, v := range p.ValidValues {
			if req <= v.MilliValue() {
				return v.MilliValue()
			}
		}
	}
	return req
}

func ceilDiv(a, b int64) int64 {
	if b <= 0 {
		return a
	}
	if a <= 0 {
		return 0
	}
	if a > math.MaxInt64-b {
		return a / b
	}
	return (a + b - 1) / b
}
