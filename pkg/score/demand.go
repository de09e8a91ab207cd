package score

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/cel"
)

// ClassGetter looks a DeviceClass up by name.
type ClassGetter func(name string) (*resourceapi.DeviceClass, error)

// Resolver is what NewDemand reads a pod's claims against.
type Resolver struct {
	Classes ClassGetter
	CEL     *cel.Cache
	// Shapes is the shape table snapshot the nodes are read with; Table
	// numbers the requests' selector sets for the devices' memo.
	Shapes []Shape
	Table  *Table
}

// Demand is a pod's unallocated device requests, resolved against a shape
// table: what each request consumes per shape, and the CEL selectors (of
// its class and its own) a device must pass.
type Demand struct {
	requests []Request
	// leaves are the selectors of the requests and subrequests that have
	// any; a request's leaf indexes them.
	leaves []leaf
}

type leaf struct {
	sels []cel.CompilationResult
	key  int
}

// NewDemand reads the device requests of the pod's claims that are not
// allocated yet: exact requests, prioritized lists (each subrequest, the
// allocator taking the first that fits on the node) and requests for all
// matching devices.
func NewDemand(claims []*resourceapi.ResourceClaim, r Resolver) (*Demand, error) {
	d := &Demand{}
	for _, c := range claims {
		if c == nil || c.Status.Allocation != nil {
			continue
		}
		for _, dr := range c.Spec.Devices.Requests {
			if dr.Exactly != nil {
				req, err := d.request(c, dr.Name, *dr.Exactly, r)
				if err != nil {
					return nil, err
				}
				d.requests = append(d.requests, req)
				continue
			}
			if len(dr.FirstAvailable) == 0 {
				continue
			}
			var list Request
			for _, sub := range dr.FirstAvailable {
				exact := resourceapi.ExactDeviceRequest{DeviceClassName: sub.DeviceClassName, Selectors: sub.Selectors,
					AllocationMode: sub.AllocationMode, Count: sub.Count, Capacity: sub.Capacity, Tolerations: sub.Tolerations}
				req, err := d.request(c, dr.Name+"/"+sub.Name, exact, r)
				if err != nil {
					return nil, err
				}
				list.FirstAvailable = append(list.FirstAvailable, req)
			}
			d.requests = append(d.requests, list)
		}
	}
	return d, nil
}

func (d *Demand) request(c *resourceapi.ResourceClaim, name string, e resourceapi.ExactDeviceRequest, r Resolver) (Request, error) {
	class, err := r.Classes(e.DeviceClassName)
	if err != nil {
		return Request{}, fmt.Errorf("claim %s/%s request %s: device class %s: %w", c.Namespace, c.Name, name, e.DeviceClassName, err)
	}
	var sels []cel.CompilationResult
	var key strings.Builder
	for _, s := range append(append([]resourceapi.DeviceSelector{}, class.Spec.Selectors...), e.Selectors...) {
		if s.CEL == nil {
			continue
		}
		key.WriteString(s.CEL.Expression)
		key.WriteByte(0)
		res := r.CEL.GetOrCompile(s.CEL.Expression)
		if res.Error != nil {
			return Request{}, fmt.Errorf("claim %s/%s request %s: selector %q: %w", c.Namespace, c.Name, name, s.CEL.Expression, res.Error)
		}
		sels = append(sels, res)
	}
	milli := map[resourceapi.QualifiedName]int64{}
	if e.Capacity != nil {
		for n, q := range e.Capacity.Requests {
			milli[n] = q.MilliValue()
		}
	}
	req := Request{Count: int(e.Count), leaf: -1, Need: make([][]int64, len(r.Shapes)), Takes: make([]int64, len(r.Shapes))}
	switch {
	case e.AllocationMode == resourceapi.DeviceAllocationModeAll:
		req.All = true
	case e.AllocationMode == "" || req.Count == 0:
		req.Count = 1
	}
	for s := range r.Shapes {
		if need := r.Shapes[s].Need(milli); r.Shapes[s].Holds(need) {
			req.Need[s] = need
			req.Takes[s] = r.Shapes[s].ShareOf(need)
		}
	}
	if len(sels) > 0 {
		req.leaf = len(d.leaves)
		d.leaves = append(d.leaves, leaf{sels: sels, key: r.Table.Key(key.String())})
	}
	return req, nil
}

// Empty reports whether the pod asks for no new devices.
func (d *Demand) Empty() bool { return len(d.requests) == 0 }

// PodBuf is reusable memory for Demand.On (one per goroutine).
type PodBuf struct {
	pod      Pod
	reqs     []Request
	subs     []Request
	matchers []deviceMatcher
}

// On is the pod as the scorer sees it on one node: the requests' selectors
// are evaluated (lazily) on that node's devices. The pod lives in buf
// (nil: a new one) until the next call with it.
func (d *Demand) On(ctx context.Context, milliCPU, memory int64, nd *NodeDevices, buf *PodBuf) *Pod {
	if buf == nil {
		buf = &PodBuf{}
	}
	var devs []Device
	if nd != nil {
		devs = nd.Devices
	}
	buf.matchers = buf.matchers[:0]
	for _, l := range d.leaves {
		buf.matchers = append(buf.matchers, deviceMatcher{ctx: ctx, sels: l.sels, key: l.key, devs: devs})
	}
	buf.reqs, buf.subs = buf.reqs[:0], buf.subs[:0]
	for _, r := range d.requests {
		if len(r.FirstAvailable) > 0 {
			start := len(buf.subs)
			for _, s := range r.FirstAvailable {
				buf.subs = append(buf.subs, buf.matched(s))
			}
			r.FirstAvailable = buf.subs[start:len(buf.subs):len(buf.subs)]
		}
		buf.reqs = append(buf.reqs, buf.matched(r))
	}
	buf.pod = Pod{MilliCPU: milliCPU, Memory: memory, Requests: buf.reqs}
	return &buf.pod
}

func (b *PodBuf) matched(r Request) Request {
	if r.leaf >= 0 {
		r.Match = &b.matchers[r.leaf]
	}
	return r
}

// deviceMatcher evaluates a request's selectors on one node's devices.
type deviceMatcher struct {
	ctx  context.Context
	sels []cel.CompilationResult
	key  int
	devs []Device
}

func (m *deviceMatcher) Match(j int) bool {
	d := &m.devs[j]
	if ok, found := d.memo.get(m.key); found {
		return ok
	}
	ok := evaluate(m.ctx, m.sels, d)
	d.memo.put(m.key, ok)
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

// memo holds a device's selector results by selector-set number (0: not
// evaluated, 1: refused, 2: accepted); readers take no lock.
type memo struct{ v atomic.Pointer[[]uint8] }

func (m *memo) get(key int) (ok, found bool) {
	if m == nil {
		return false, false
	}
	p := m.v.Load()
	if p == nil || key >= len(*p) || (*p)[key] == 0 {
		return false, false
	}
	return (*p)[key] == 2, true
}

func (m *memo) put(key int, ok bool) {
	if m == nil {
		return
	}
	val := uint8(1)
	if ok {
		val = 2
	}
	for {
		old := m.v.Load()
		var next []uint8
		if old != nil {
			next = make([]uint8, max(len(*old), key+1))
			copy(next, *old)
		} else {
			next = make([]uint8, key+1)
		}
		next[key] = val
		if m.v.CompareAndSwap(old, &next) {
			return
		}
	}
}
