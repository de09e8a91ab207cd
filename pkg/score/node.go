package score

// GPU is one device as the scorer sees it: its shape (an index into the
// shape table) and what allocated claims left of each capacity.
type GPU struct {
	Shape int
	Free  []int64
}

// Node is one node's state: host resources and its Tierra devices in the
// allocator's order. Memory is in bytes.
type Node struct {
	MilliCPU, Memory         int64
	UsedMilliCPU, UsedMemory int64
	GPUs                     []GPU
	// frag caches the node's expected fragmentation; valid when fragOK.
	frag   float64
	fragOK bool
}

// Changed drops what the node caches about its state; call it after
// changing the node.
func (n *Node) Changed() { n.fragOK = false }

// FreeMilli is GPU j's remaining compute share in thousandths of the GPU.
func (n *Node) FreeMilli(j int, shapes []Shape) int64 {
	g := &n.GPUs[j]
	sh := &shapes[g.Shape]
	return g.Free[sh.Compute] * 1000 / sh.Dims[sh.Compute].Capacity
}

// Request is one device request of a pod's claim.
type Request struct {
	// Count is how many devices the request takes.
	Count int
	// Need[s] is what one device of shape s gives up to the request, nil
	// when the request cannot use that shape.
	Need [][]int64
	// Share is the thousandths of a GPU each taken device loses; Takes,
	// when set, overrides it per shape.
	Share int64
	Takes []int64
	// Match, when set, also has to accept the device (the node's j-th GPU):
	// selectors a shape cannot express.
	Match func(j int) bool
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
// the request may use and that still have what it needs, no device twice.
// It returns the picks appended to buf[:0], or ok false when a request
// cannot be met.
func FirstFit(n *Node, p *Pod, buf []Pick) (picks []Pick, ok bool) {
	picks = buf[:0]
	for r := range p.Requests {
		req := &p.Requests[r]
		got := 0
		for j := range n.GPUs {
			if got == req.Count {
				break
			}
			g := &n.GPUs[j]
			need := req.Need[g.Shape]
			if need == nil || !covers(g.Free, need) || taken(picks, j) || (req.Match != nil && !req.Match(j)) {
				continue
			}
			take := req.Share
			if req.Takes != nil {
				take = req.Takes[g.Shape]
			}
			picks = append(picks, Pick{GPU: j, Take: take})
			got++
		}
		if got < req.Count {
			return nil, false
		}
	}
	return picks, true
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

// GPUFreeAfter is the node's idle GPU share (thousandths) after the picks.
func GPUFreeAfter(n *Node, shapes []Shape, picks []Pick) int64 {
	var free int64
	for j := range n.GPUs {
		free += n.FreeMilli(j, shapes)
	}
	for _, p := range picks {
		free -= p.Take
	}
	return free
}
