package score

// yieldScorer is FGD's fragmentation growth with the host counted: it picks
// the node whose expected fragmentation grows least, where an idle GPU
// share counts as fragmented also when the node's cpu or memory can no
// longer feed it. Two terms differ from frag:
//
//   - a typical pod that does not fit the node's memory any more cannot use
//     its idle GPU share (FGD checks only cpu);
//   - host strand: the idle GPU share beyond what the cpu and memory left
//     can feed at the typical pods' cpu and memory per GPU. A pod that
//     takes a node's cpu or memory faster than its GPUs (a CPU-only pod, a
//     GPU pod asking more host per GPU than the node has) grows it; so
//     host-heavy pods go to host-rich nodes, where the host is not what
//     the idle GPUs need.
//
// Best fit breaks ties, as in frag. Typical pods without cpu and memory
// (the plugin's default target workload) leave only FGD's terms.
type yieldScorer struct{}

func (yieldScorer) Name() string { return Yield }

func (yieldScorer) Score(c *Candidate) Rank {
	n := c.Node
	before := n.HostFrag(c.Classes, c.Shapes, c.Buf)
	after := n.HostFragWith(c.Classes, c.Shapes, c.Buf, c.Pod.MilliCPU, c.Pod.Memory, c.Picks)
	return Rank{Primary: -round6(after - before), Secondary: -float64(GPUFreeAfter(n, c.Shapes, c.Picks))}
}

// HostFrag is the yield scorer's fragmentation of the node (thousandths of
// a GPU), cached until Changed.
func (n *Node) HostFrag(classes []Class, shapes []Shape, buf []int64) float64 {
	if !n.hostFragOK {
		n.hostFrag = n.HostFragWith(classes, shapes, buf, 0, 0, nil)
		n.hostFragOK = true
	}
	return n.hostFrag
}

// HostFragWith is the node's fragmentation with memory checked plus its
// host strand, after hypothetically adding cpu, memory and the picks. The
// sum can pass the idle share (a share no typical pod fits and the host
// cannot feed counts twice): capping it at the idle share measured 0.09
// points worse on openb.
func (n *Node) HostFragWith(classes []Class, shapes []Shape, buf []int64, cpu, memory int64, picks []Pick) float64 {
	if len(n.GPUs) == 0 {
		return 0
	}
	h := hostLeft{cpu: n.MilliCPU - n.UsedMilliCPU - cpu, memory: n.Memory - n.UsedMemory - memory, withMemory: true}
	frag := n.fragAfter(classes, shapes, buf, h, picks)
	cpuPer, memPer := hostPerGPU(classes)
	return frag + strand(GPUFreeAfter(n, shapes, picks), h, cpuPer, memPer)
}

// hostPerGPU is the typical GPU pods' mean cpu (milli) and memory (bytes)
// per whole GPU they ask for.
func hostPerGPU(classes []Class) (cpu, memory float64) {
	var gpus float64
	for i := range classes {
		t := &classes[i].Typical
		if t.Num == 0 {
			continue
		}
		gpus += t.Weight * float64(t.Milli*int64(t.Num)) / 1000
		cpu += t.Weight * float64(t.MilliCPU)
		memory += t.Weight * float64(t.Memory)
	}
	if gpus == 0 {
		return 0, 0
	}
	return cpu / gpus, memory / gpus
}

// strand is the idle GPU share (thousandths) the host left cannot feed at
// cpuPer and memPer a GPU (a zero rate feeds any share).
func strand(idle int64, h hostLeft, cpuPer, memPer float64) float64 {
	var s float64
	if cpuPer > 0 {
		s = max(s, float64(idle)-float64(h.cpu)*1000/cpuPer)
	}
	if memPer > 0 {
		s = max(s, float64(idle)-float64(h.memory)*1000/memPer)
	}
	return min(max(0, s), float64(idle))
}
