package sim

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// rank orders candidate nodes: higher Primary wins, then higher Secondary;
// the simulation breaks remaining ties at random, as kube-scheduler does.
type rank struct{ primary, secondary float64 }

func (r rank) less(o rank) bool {
	if r.primary != o.primary {
		return r.primary < o.primary
	}
	return r.secondary < o.secondary
}

// candidate is a feasible node for one pod, with the devices the
// allocator's first fit is predicted to take.
type candidate struct {
	s      *nodeState
	pod    Pod
	cc     *claimClass
	picked []int
	env    *env
}

// take is the share (thousandths) each picked GPU loses.
func (c *candidate) take() int64 {
	if c.pod.NumGPU == 0 {
		return 0
	}
	return c.pod.GPUMilli
}

// gpuFreeAfter is the node's idle GPU share after the placement.
func (c *candidate) gpuFreeAfter() int64 {
	var free int64
	for j := range c.s.gpus {
		free += c.s.freeMilli(j, c.env.shapes)
	}
	return free - c.take()*int64(len(c.picked))
}

// Scorer picks the node among the feasible ones. Scorers live in this
// package; NewScorer lists them.
type Scorer interface {
	Name() string
	score(c *candidate) rank
}

// nodeSampler is implemented by scorers that, like kube-scheduler, stop
// looking after a number of feasible nodes.
type nodeSampler interface {
	nodesToFind(total int) int
}

// Scorer names.
const (
	ScorerDefault = "default"
	ScorerRandom  = "random"
	ScorerBestFit = "bestfit"
	ScorerFrag    = "frag"
)

var scorers = map[string]func() Scorer{
	ScorerDefault: func() Scorer { return defaultScorer{} },
	ScorerRandom:  func() Scorer { return randomScorer{} },
	ScorerBestFit: func() Scorer { return bestFitScorer{} },
	ScorerFrag:    func() Scorer { return fragScorer{} },
}

// ScorerNames lists the scorers in report order.
func ScorerNames() []string {
	return []string{ScorerDefault, ScorerRandom, ScorerBestFit, ScorerFrag}
}

// NewScorer returns the scorer with the given name.
func NewScorer(name string) (Scorer, error) {
	f, ok := scorers[name]
	if !ok {
		names := ScorerNames()
		sort.Strings(names)
		return nil, fmt.Errorf("unknown scorer %q (known: %s)", name, strings.Join(names, ", "))
	}
	return f(), nil
}

// defaultScorer reproduces kube-scheduler's default profile for these pods:
// NodeResourcesFit (LeastAllocated, cpu and memory, weight 1) plus
// NodeResourcesBalancedAllocation (weight 1; in 1.37 it scores the
// pod's change to the node's balance, not the balance it leaves), over the first feasible nodes
// that percentageOfNodesToScore's adaptive default asks for. The other
// default score plugins (TaintToleration, NodeAffinity, PodTopologySpread,
// InterPodAffinity, ImageLocality, and DynamicResources, which in 1.37 only
// ranks firstAvailable subrequests) give every node the same score here.
type defaultScorer struct{}

func (defaultScorer) Name() string { return ScorerDefault }

// Scheduler defaults for pods that request nothing (NonZeroRequested).
const (
	defaultMilliCPU  = 100
	defaultMemoryMiB = 200
)

func (defaultScorer) score(c *candidate) rank {
	n, s := c.s.trace, c.s
	cpu, mem := c.pod.MilliCPU, c.pod.MemoryMiB
	nzCPU, nzMem := cpu, mem
	if nzCPU == 0 {
		nzCPU = defaultMilliCPU
	}
	if nzMem == 0 {
		nzMem = defaultMemoryMiB
	}
	least := (leastAllocated(s.cpuUsed+nzCPU, n.MilliCPU) + leastAllocated(s.memUsed+nzMem, n.MemoryMiB)) / 2
	// BalancedAllocation (useRequested: no defaults) scores how much the
	// pod improves the node's balance, not the balance it leaves:
	// 50 + (50 + with - without)/2, in integers as the scheduler does.
	with := balance(s.cpuUsed+cpu, n.MilliCPU, s.memUsed+mem, n.MemoryMiB)
	without := balance(s.cpuUsed, n.MilliCPU, s.memUsed, n.MemoryMiB)
	balanced := 50 + (50+with-without)/2
	return rank{primary: float64(least + balanced)}
}

// balance is balancedResourceScore for cpu and memory: (1 - std) * 100,
// truncated, std being half the gap between the two requested fractions.
func balance(cpu, cpuCap, mem, memCap int64) int64 {
	var fr []float64
	if cpuCap > 0 {
		fr = append(fr, math.Min(1, float64(cpu)/float64(cpuCap)))
	}
	if memCap > 0 {
		fr = append(fr, math.Min(1, float64(mem)/float64(memCap)))
	}
	if len(fr) < 2 {
		return 100
	}
	return int64((1 - math.Abs((fr[0]-fr[1])/2)) * 100)
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity == 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * 100 / capacity
}

// nodesToFind is kube-scheduler's numFeasibleNodesToFind with the adaptive
// percentageOfNodesToScore (50% minus 1% per 125 nodes, at least 5%, at
// least 100 nodes).
func (defaultScorer) nodesToFind(total int) int {
	if total < 100 {
		return total
	}
	pct := max(50-total/125, 5)
	return max(total*pct/100, 100)
}

// randomScorer gives every feasible node the same score.
type randomScorer struct{}

func (randomScorer) Name() string          { return ScorerRandom }
func (randomScorer) score(*candidate) rank { return rank{} }

// bestFitScorer prefers the node with the least idle GPU share left after
// the placement, then the least cpu left.
type bestFitScorer struct{}

func (bestFitScorer) Name() string { return ScorerBestFit }

func (bestFitScorer) score(c *candidate) rank {
	n := c.s.trace
	cpuLeft := float64(n.MilliCPU-c.s.cpuUsed-c.pod.MilliCPU) / float64(n.MilliCPU)
	return rank{primary: -float64(c.gpuFreeAfter()), secondary: -cpuLeft}
}

// fragScorer is FGD for DRA devices: it picks the node whose expected
// fragmentation (over the target workload's typical pods) grows least when
// the allocator's first fit takes the predicted devices; best fit breaks
// ties. Unlike FGD it cannot choose the GPU inside the node: the allocator
// does, so the prediction mirrors the allocator's device order.
type fragScorer struct{}

func (fragScorer) Name() string { return ScorerFrag }

func (fragScorer) score(c *candidate) rank {
	e := c.env
	before := c.s.nodeFrag(e.classes, e.shapes, e.fbuf)
	after := c.s.fragWith(e.classes, e.shapes, e.fbuf, c.pod.MilliCPU, c.picked, c.take())
	return rank{primary: -round6(after - before), secondary: -float64(c.gpuFreeAfter())}
}

// round6 drops float noise so that equal growths tie.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
