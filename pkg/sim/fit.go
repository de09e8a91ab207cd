package sim

import "github.com/tierra-gpu/tierra/pkg/score"

// feasible is the host filter and the prefilter, an exact mirror of the
// devices' remaining capacity; picks receives the devices the allocator's
// first fit is predicted to take.
func (s *nodeState) feasible(p *score.Pod, buf []score.Pick) ([]score.Pick, bool) {
	if !score.FitsHost(&s.Node, p) {
		return nil, false
	}
	return score.FirstFit(&s.Node, p, buf)
}

// scorePod is a trace pod as pkg/score sees it.
func scorePod(p Pod, cc *claimClass) *score.Pod {
	sp := &score.Pod{MilliCPU: p.MilliCPU, Memory: p.MemoryMiB << 20}
	if cc != nil {
		sp.Requests = cc.requests
	}
	return sp
}
