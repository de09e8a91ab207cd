package score

// migView is what the MIG GPUs of a node have left after some picks: each
// set's free memory slices and the placements that could still be
// allocated. FGD's question for a typical pod becomes: which free slices
// does no placement that is still possible, on a product the pod runs on
// and with at least the pod's share, cover? Those the pod cannot use.
type migView struct {
	n    *Node
	idle int64
	// free[s] are set s's free memory slices (0 for a set without any).
	free []uint64
	// placeable lists the MIG placements that still fit.
	placeable []int
	covered   []uint64
}

func (n *Node) hasMIG() bool {
	for s := range n.Sets {
		if n.Sets[s].MIG() {
			return true
		}
	}
	return false
}

// migAfter is the node's MIG view after the picks.
func (n *Node) migAfter(picks []Pick) *migView {
	v := &migView{n: n, free: make([]uint64, len(n.Sets)), covered: make([]uint64, len(n.Sets))}
	for s := range n.Sets {
		if set := &n.Sets[s]; set.MIG() {
			v.free[s] = set.freeSlices()
		}
	}
	for _, p := range picks {
		if n.inMIG(p.GPU) {
			part := n.GPUs[p.GPU].Part
			v.free[part.Set] &^= part.Slices
		}
	}
	for s := range n.Sets {
		if set := &n.Sets[s]; set.MIG() {
			v.idle += set.share(v.free[s])
		}
	}
	for j := range n.GPUs {
		if n.inMIG(j) && idle(n.GPUs[j].Free) && !taken(picks, j) && n.partFits(n.GPUs[j].Part, picks) {
			v.placeable = append(v.placeable, j)
		}
	}
	return v
}

// idle reports whether no claim holds any of the device.
func idle(free []int64) bool {
	for _, f := range free {
		if f <= 0 {
			return false
		}
	}
	return true
}

// unusable is, for one typical pod, how many MIG GPUs it could land on and
// the idle share (thousandths of a GPU) of the memory slices it could not
// use.
func (v *migView) unusable(c *Class) (fit int, small int64) {
	clear(v.covered)
	for _, j := range v.placeable {
		g := &v.n.GPUs[j]
		if c.Allowed[g.Shape] && g.Part.Share >= c.Milli {
			v.covered[g.Part.Set] |= g.Part.Slices
		}
	}
	for s := range v.n.Sets {
		set := &v.n.Sets[s]
		if !set.MIG() {
			continue
		}
		if v.covered[s] != 0 {
			fit++
		}
		small += set.share(v.free[s] &^ v.covered[s])
	}
	return fit, small
}
