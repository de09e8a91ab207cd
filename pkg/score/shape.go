package score

import (
	"fmt"
	"math"
	"sort"
	"strings"

	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// Dim is one consumable capacity of a device, in milli-units.
type Dim struct {
	Name     resourceapi.QualifiedName
	Capacity int64
	Policy   *resourceapi.CapacityRequestPolicy
}

// WholeDim is the single dimension of an exclusive device: a claim takes
// all of it or nothing.
const WholeDim resourceapi.QualifiedName = "tierra.dev/whole"

// Shape is the capacity layout shared by the GPUs of one product.
type Shape struct {
	Product string
	Dims    []Dim
	// Compute indexes the compute-share capacity in Dims.
	Compute int
	// Exclusive marks a device claims cannot share: Dims is one WholeDim.
	Exclusive bool
}

// Key identifies a shape among others (product and capacities).
func (s Shape) Key() string { return fmt.Sprintf("%s/%v/%v", s.Product, s.Exclusive, s.Dims) }

// ErrNotShared is returned by SharedShapeOf for a device claims cannot share.
var ErrNotShared = fmt.Errorf("device is not shared (allowMultipleAllocations unset)")

// SharedShapeOf reads a shared device's consumable capacities; it needs
// allowMultipleAllocations and a compute capacity.
func SharedShapeOf(d resourceapi.Device) (Shape, error) {
	if d.AllowMultipleAllocations == nil || !*d.AllowMultipleAllocations {
		return Shape{}, ErrNotShared
	}
	sh := Shape{Product: slices.StringAttribute(d, slices.AttrProductName), Compute: -1}
	names := make([]string, 0, len(d.Capacity))
	for n := range d.Capacity {
		names = append(names, string(n))
	}
	sort.Strings(names)
	for _, n := range names {
		c := d.Capacity[resourceapi.QualifiedName(n)]
		if strings.Contains(strings.ToLower(n), "compute") {
			sh.Compute = len(sh.Dims)
		}
		sh.Dims = append(sh.Dims, Dim{Name: resourceapi.QualifiedName(n), Capacity: c.Value.MilliValue(), Policy: c.RequestPolicy})
	}
	if sh.Compute < 0 {
		return Shape{}, fmt.Errorf("no compute capacity among %v", names)
	}
	return sh, nil
}

// ShapeOf reads any device: a shared one as SharedShapeOf does, any other
// (a whole GPU, a MIG instance) as exclusive.
func ShapeOf(d resourceapi.Device) Shape {
	if sh, err := SharedShapeOf(d); err == nil {
		return sh
	}
	return Shape{
		Product:   slices.StringAttribute(d, slices.AttrProductName),
		Dims:      []Dim{{Name: WholeDim, Capacity: 1000}},
		Exclusive: true,
	}
}

// Full is a fresh device's free capacity: every dim at its capacity.
func (s Shape) Full() []int64 {
	free := make([]int64, len(s.Dims))
	for k, d := range s.Dims {
		free[k] = d.Capacity
	}
	return free
}

// Need is what one device of this shape gives up to a request asking for
// the given capacities (milli-units by name; a missing one at the
// policy's default or whole, as the allocator fills it), rounded the way
// the allocator rounds. An exclusive device
// gives up all of itself.
func (s Shape) Need(requests map[resourceapi.QualifiedName]int64) []int64 {
	need := make([]int64, len(s.Dims))
	for k, d := range s.Dims {
		if s.Exclusive {
			need[k] = d.Capacity
			continue
		}
		req, ok := requests[d.Name]
		if !ok {
			need[k] = d.emptyRequest()
			continue
		}
		need[k] = ConsumedMilli(req, d)
	}
	return need
}

// emptyRequest is what the allocator consumes of a capacity a claim does
// not name: the request policy's default, else the whole capacity
// (fillEmptyRequest in k8s.io/dynamic-resource-allocation). The default is
// taken as published, not rounded.
func (d Dim) emptyRequest() int64 {
	if d.Policy != nil && d.Policy.Default != nil {
		return d.Policy.Default.MilliValue()
	}
	return d.Capacity
}

// Holds reports whether a fresh device of this shape has the need: the
// allocator's static capacity check.
func (s Shape) Holds(need []int64) bool {
	for k, d := range s.Dims {
		if need[k] > d.Capacity {
			return false
		}
	}
	return true
}

// ShareOf is the thousandths of the device's compute a consumption takes.
func (s Shape) ShareOf(need []int64) int64 {
	return need[s.Compute] * 1000 / s.Dims[s.Compute].Capacity
}

// ConsumedMilli mirrors how the allocator turns a requested amount into a
// consumed amount under the capacity's request policy (round up to the
// range's step or to the next valid value).
func ConsumedMilli(req int64, d Dim) int64 {
	p := d.Policy
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
		return lo + CeilDiv(req-lo, step)*step
	case len(p.ValidValues) > 0:
		for _, v := range p.ValidValues {
			if req <= v.MilliValue() {
				return v.MilliValue()
			}
		}
	}
	return req
}

// CeilDiv is a/b rounded up, for non-negative a and positive b.
func CeilDiv(a, b int64) int64 {
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
