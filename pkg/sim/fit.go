package sim

// fitsHost is NodeResourcesFit's filter for the two resources the trace
// states: the pod's cpu and memory must fit what is left on the node.
func (s *nodeState) fitsHost(p Pod) bool {
	return s.cpuUsed+p.MilliCPU <= s.trace.MilliCPU && s.memUsed+p.MemoryMiB <= s.trace.MemoryMiB
}

// fitsGPU is the prefilter: an exact mirror of the devices' remaining
// capacity. It returns the GPUs the allocator's first fit would take (in
// device order) into buf, or nil when the claim cannot fit.
func (s *nodeState) fitsGPU(cc *claimClass, buf []int) []int {
	buf = buf[:0]
	if cc == nil {
		return buf
	}
	for j := range s.gpus {
		g := &s.gpus[j]
		if !cc.allowed[g.shape] || !covers(g.free, cc.need[g.shape]) {
			continue
		}
		buf = append(buf, j)
		if len(buf) == cc.key.numGPU {
			return buf
		}
	}
	return nil
}

func covers(free, need []int64) bool {
	for k, n := range need {
		if free[k] < n {
			return false
		}
	}
	return true
}

// feasible combines both filters; picked receives the predicted devices.
func (s *nodeState) feasible(p Pod, cc *claimClass, buf []int) ([]int, bool) {
	if !s.fitsHost(p) {
		return nil, false
	}
	if cc == nil {
		return buf[:0], true
	}
	picked := s.fitsGPU(cc, buf)
	return picked, picked != nil
}

// freeMilli is a GPU's remaining compute share in thousandths of the GPU.
func (s *nodeState) freeMilli(j int, shapes []shape) int64 {
	g := &s.gpus[j]
	sh := &shapes[g.shape]
	return g.free[sh.compute] * 1000 / sh.dims[sh.compute].capacity
}
