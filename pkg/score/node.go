package score

import "math/bits"

// GPU is one device as the scorer sees it: its shape (an index into the
// shape table), what allocated claims left of each capacity, and, for a
// device that shares a counter set with others (a MIG placement), what it
// draws from that set.
type GPU struct {
	Shape int
	Free  []int64
	Part  *Part
}

// Part is how a device draws on a counter set it shares with other devices
// of the node: a MIG placement on its GPU's memory slices, or a tenant slot.
type Part struct {
	// Set indexes Node.Sets.
	Set int
	// Uses is what the device consumes of each of the set's counters.
	Uses []int64
	// Slices are the memory slices it covers (bit i: memory slice i) and
	// Share their thousandths of the set's memory slices; both zero when
	// the set has no memory slices.
	Slices uint64
	Share  int64
}

// CounterSet is one counter set of the node: what is left of each counter.
// A set with memory-slice counters is a MIG GPU: the scorer counts its
// idle share by free memory slices, not by the devices that draw on it.
type CounterSet struct {
	Free []int64
	// Slices is how many memory-slice counters the set has (at most 64);
	// SliceCounter[i] is the index of memory slice i's counter.
	Slices       int
	SliceCounter []int
}

// MIG reports whether the set is a MIG GPU.
func (s *CounterSet) MIG() bool { return s.Slices > 0 }

// freeSlices is the mask of the set's free memory slices.
func (s *CounterSet) freeSlices() uint64 {
	var m uint64
	for i, k := range s.SliceCounter {
		if s.Free[k] > 0 {
			m |= 1 << i
		}
	}
	return m
}

// share is the thousandths of the set's memory slices in the mask.
func (s *CounterSet) share(mask uint64) int64 {
	return int64(bits.OnesCount64(mask)) * 1000 / int64(s.Slices)
}

// Node is one node's state: host resources, its Tierra devices in the
// allocator's order and the counter sets they draw on. Memory is in bytes.
type Node struct {
	MilliCPU, Memory         int64
	UsedMilliCPU, UsedMemory int64
	GPUs                     []GPU
	Sets                     []CounterSet
	// backing holds Free of GPUs and Sets when NodeInto built the node.
	backing []int64
	// frag caches the node's expected fragmentation; valid when fragOK.
	frag   float64
	fragOK bool
	// hostFrag caches HostFrag; valid when hostFragOK.
	hostFrag   float64
	hostFragOK bool
}

// Changed drops what the node caches about its state; call it after
// changing the node.
func (n *Node) Changed() { n.fragOK, n.hostFragOK = false, false }

// FreeMilli is GPU j's remaining compute share in thousandths of the GPU.
func (n *Node) FreeMilli(j int, shapes []Shape) int64 {
	g := &n.GPUs[j]
	sh := &shapes[g.Shape]
	return g.Free[sh.Compute] * 1000 / sh.Dims[sh.Compute].Capacity
}

// inMIG reports whether GPU j is a placement on a MIG GPU: its idle share
// is its set's, not its own.
func (n *Node) inMIG(j int) bool {
	p := n.GPUs[j].Part
	return p != nil && n.Sets[p.Set].MIG()
}

// Matcher accepts or refuses the node's j-th device for a request.
type Matcher interface{ Match(j int) bool }

// MatchFunc is a Matcher from a function.
type MatchFunc func(j int) bool

// Match implements Matcher.
func (f MatchFunc) Match(j int) bool { return f(j) }

// Request is one device request of a pod's claim.
type Request struct {
	// Count is how many devices the request takes; All, when set, means
	// every device the request may use (allocationMode All).
	Count int
	All   bool
	// Need[s] is what one device of shape s gives up to the request, nil
	// when the request cannot use that shape.
	Need [][]int64
	// Share is the thousandths of a GPU each taken device loses; Takes,
	// when set, overrides it per shape. A MIG placement always loses its
	// share of the GPU's memory slices.
	Share int64
	Takes []int64
	// Match, when set, also has to accept the device: selectors a shape
	// cannot express.
	Match Matcher
	// FirstAvailable, when set, makes the request a prioritized list: the
	// first of these subrequests that fits on the node is allocated, and
	// the request's own fields are unused.
	FirstAvailable []Request
	// leaf indexes the Demand's selectors (-1: none); set by NewDemand.
	leaf int
}

// Pod is what a pod asks of a node: host resources and device requests.
type Pod struct {
	MilliCPU, Memory int64
	Requests         []Request
}

// Pick is one device FirstFit predicts the allocator takes.
type Pick struct {
	GPU  int
	Take int64
}

// FirstFit predicts the devices the allocator's first fit takes on the
// node: for each request in turn, the first devices in device order that
// the request may use and that still have what it needs (capacity and
// counters), no device twice; for a prioritized list, the first subrequest
// for which this and the following requests fit. It returns the picks
// appended to buf[:0], or ok false when a request cannot be met.
func FirstFit(n *Node, p *Pod, buf []Pick) (picks []Pick, ok bool) {
	return n.fit(p.Requests, buf[:0])
}

func (n *Node) fit(reqs []Request, picks []Pick) ([]Pick, bool) {
	if len(reqs) == 0 {
		return picks, true
	}
	req := &reqs[0]
	if len(req.FirstAvailable) == 0 {
		picks, ok := n.fitOne(req, picks)
		if !ok {
			return nil, false
		}
		return n.fit(reqs[1:], picks)
	}
	base := len(picks)
	for s := range req.FirstAvailable {
		got, ok := n.fitOne(&req.FirstAvailable[s], picks[:base])
		if !ok {
			continue
		}
		if out, ok := n.fit(reqs[1:], got); ok {
			return out, true
		}
	}
	return nil, false
}

// fitOne appends the request's picks; on failure it returns picks as they
// were.
func (n *Node) fitOne(req *Request, picks []Pick) ([]Pick, bool) {
	if req.All {
		return n.fitAll(req, picks)
	}
	base, got := len(picks), 0
	for j := range n.GPUs {
		if got == req.Count {
			break
		}
		if !n.usable(req, j, picks) || (req.Match != nil && !req.Match.Match(j)) {
			continue
		}
		picks = append(picks, Pick{GPU: j, Take: n.take(req, j)})
		got++
	}
	if got < req.Count {
		return picks[:base], false
	}
	return picks, true
}

// fitAll takes every device the request may use; the allocator fails the
// request when one of them is not available or there is none.
func (n *Node) fitAll(req *Request, picks []Pick) ([]Pick, bool) {
	base := len(picks)
	for j := range n.GPUs {
		if req.Need[n.GPUs[j].Shape] == nil || (req.Match != nil && !req.Match.Match(j)) {
			continue
		}
		if !n.usable(req, j, picks) {
			return picks[:base], false
		}
		picks = append(picks, Pick{GPU: j, Take: n.take(req, j)})
	}
	return picks, len(picks) > base
}

// usable reports whether device j still has what the request needs,
// leaving out the request's selectors.
func (n *Node) usable(req *Request, j int, picks []Pick) bool {
	g := &n.GPUs[j]
	need := req.Need[g.Shape]
	return need != nil && covers(g.Free, need) && !taken(picks, j) && (g.Part == nil || n.partFits(g.Part, picks))
}

func (n *Node) take(req *Request, j int) int64 {
	g := &n.GPUs[j]
	switch {
	case g.Part != nil && n.Sets[g.Part.Set].MIG():
		return g.Part.Share
	case req.Takes != nil:
		return req.Takes[g.Shape]
	}
	return req.Share
}

// partFits reports whether the set still has the counters the part uses,
// after what the picks already draw from it.
func (n *Node) partFits(pt *Part, picks []Pick) bool {
	set := &n.Sets[pt.Set]
	for k, u := range pt.Uses {
		if u == 0 {
			continue
		}
		free := set.Free[k]
		for _, p := range picks {
			if q := n.GPUs[p.GPU].Part; q != nil && q.Set == pt.Set {
				free -= q.Uses[k]
			}
		}
		if free < u {
			return false
		}
	}
	return true
}

func covers(free, need []int64) bool {
	for k, n := range need {
		if free[k] < n {
			return false
		}
	}
	return true
}

func taken(picks []Pick, j int) bool {
	for _, p := range picks {
		if p.GPU == j {
			return true
		}
	}
	return false
}

// FitsHost is NodeResourcesFit's filter for cpu and memory.
func FitsHost(n *Node, p *Pod) bool {
	return n.UsedMilliCPU+p.MilliCPU <= n.MilliCPU && n.UsedMemory+p.Memory <= n.Memory
}

// GPUFreeAfter is the node's idle GPU share (thousandths) after the picks:
// each device's, and each MIG GPU's free memory slices.
func GPUFreeAfter(n *Node, shapes []Shape, picks []Pick) int64 {
	var free int64
	for j := range n.GPUs {
		if !n.inMIG(j) {
			free += n.FreeMilli(j, shapes)
		}
	}
	for s := range n.Sets {
		if set := &n.Sets[s]; set.MIG() {
			free += set.share(set.freeSlices())
		}
	}
	for _, p := range picks {
		free -= p.Take
	}
	return free
}
