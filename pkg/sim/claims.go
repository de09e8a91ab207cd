package sim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/pkg/score"
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
// allocator, and its one device request as pkg/score sees it: what it
// consumes on each GPU shape (mirroring the allocator's rounding), nil
// for the shapes its gpu_spec rules out.
type claimClass struct {
	key      claimKey
	claim    *resourceapi.ResourceClaim
	requests []score.Request
}

// claimClasses builds and caches claim classes for one published cluster.
type claimClasses struct {
	shapes  []score.Shape
	byKey   map[claimKey]*claimClass
	counter int
}

func newClaimClasses(shapes []score.Shape) *claimClasses {
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
	milli := map[resourceapi.QualifiedName]int64{}
	for k, d := range ref.Dims {
		var m int64
		if k == ref.Compute {
			m = score.CeilDiv(d.Capacity*key.milli, 1000)
		}
		requests[d.Name] = *resource.NewMilliQuantity(m, resource.DecimalSI)
		milli[d.Name] = m
	}
	sreq := score.Request{Count: key.numGPU, Share: key.milli}
	for _, sh := range c.shapes {
		if sh.Dims[sh.Compute].Capacity != ref.Dims[ref.Compute].Capacity || sh.Dims[sh.Compute].Name != ref.Dims[ref.Compute].Name {
			return nil, fmt.Errorf("GPU products %q and %q publish different compute capacities; one claim cannot ask both for the same share", ref.Product, sh.Product)
		}
		var need []int64
		if len(spec) == 0 || containsProduct(spec, sh.Product) {
			need = sh.Need(milli)
		}
		sreq.Need = append(sreq.Need, need)
	}
	cc.requests = []score.Request{sreq}
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
		quoted[i] = strconv.Quote(modelProduct(m))
	}
	return fmt.Sprintf("%s in [%s]", slices.CELAttribute(slices.AttrProductName), strings.Join(quoted, ", "))
}

func containsProduct(spec []string, product string) bool {
	for _, m := range spec {
		if modelProduct(m) == product {
			return true
		}
	}
	return false
}
