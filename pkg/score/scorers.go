package score

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Rank orders candidate nodes: higher Primary wins, then higher Secondary;
// callers break remaining ties at random, as kube-scheduler does.
type Rank struct{ Primary, Secondary float64 }

// Less reports whether r ranks below o.
func (r Rank) Less(o Rank) bool {
	if r.Primary != o.Primary {
		return r.Primary < o.Primary
	}
	return r.Secondary < o.Secondary
}

// Candidate is a feasible node for one pod, with the devices the
// allocator's first fit is predicted to take.
type Candidate struct {
	Node    *Node
	Pod     *Pod
	Picks   []Pick
	Shapes  []Shape
	Classes []Class
	// Buf is scratch space for the scorer (one per goroutine).
	Buf []int64
}

// Scorer ranks a candidate node. NewScorer lists them.
type Scorer interface {
	Name() string
	Score(c *Candidate) Rank
}

// Sampler is implemented by scorers that, like kube-scheduler, stop looking
// after a number of feasible nodes.
type Sampler interface {
	NodesToFind(total int) int
}

// Scorer names.
const (
	Default = "default"
	Random  = "random"
	BestFit = "bestfit"
	Frag    = "frag"
	Yield   = "yield"
)

var scorers = map[string]func() Scorer{
	Default: func() Scorer { return defaultScorer{} },
	Random:  func() Scorer { return randomScorer{} },
	BestFit: func() Scorer { return bestFitScorer{} },
	Frag:    func() Scorer { return fragScorer{} },
	Yield:   func() Scorer { return yieldScorer{} },
}

// Names lists the scorers in report order.
func Names() []string { return []string{Default, Random, BestFit, Frag, Yield} }

// NewScorer returns the scorer with the given name.
func NewScorer(name string) (Scorer, error) {
	f, ok := scorers[name]
	if !ok {
		names := Names()
		sort.Strings(names)
		return nil, fmt.Errorf("unknown scorer %q (known: %s)", name, strings.Join(names, ", "))
	}
	return f(), nil
}

// defaultScorer reproduces kube-scheduler's default profile for pods without
// affinities, spread constraints or tolerations: NodeResourcesFit
// (LeastAllocated, cpu and memory, weight 1) plus
// NodeResourcesBalancedAllocation (weight 1; in 1.37 it scores the pod's
// change to the node's balance, not the balance it leaves), over the first
// feasible nodes that percentageOfNodesToScore's adaptive default asks for.
// The other default score plugins (TaintToleration, NodeAffinity,
// PodTopologySpread, InterPodAffinity, ImageLocality, and DynamicResources,
// which in 1.37 only ranks firstAvailable subrequests) give every node the
// same score for such pods.
type defaultScorer struct{}

func (defaultScorer) Name() string { return Default }

// Scheduler defaults for pods that request nothing (NonZeroRequested).
const (
	defaultMilliCPU = 100
	defaultMemory   = 200 << 20
)

func (defaultScorer) Score(c *Candidate) Rank {
	n := c.Node
	cpu, mem := c.Pod.MilliCPU, c.Pod.Memory
	nzCPU, nzMem := cpu, mem
	if nzCPU == 0 {
		nzCPU = defaultMilliCPU
	}
	if nzMem == 0 {
		nzMem = defaultMemory
	}
	least := (leastAllocated(n.UsedMilliCPU+nzCPU, n.MilliCPU) + leastAllocated(n.UsedMemory+nzMem, n.Memory)) / 2
	// BalancedAllocation (useRequested: no defaults) scores how much the
	// pod improves the node's balance, not the balance it leaves:
	// 50 + (50 + with - without)/2, in integers as the scheduler does.
	with := balance(n.UsedMilliCPU+cpu, n.MilliCPU, n.UsedMemory+mem, n.Memory)
	without := balance(n.UsedMilliCPU, n.MilliCPU, n.UsedMemory, n.Memory)
	balanced := 50 + (50+with-without)/2
	return Rank{Primary: float64(least + balanced)}
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

// NodesToFind is kube-scheduler's numFeasibleNodesToFind with the adaptive
// percentageOfNodesToScore (50% minus 1% per 125 nodes, at least 5%, at
// least 100 nodes).
func (defaultScorer) NodesToFind(total int) int {
	if total < 100 {
		return total
	}
	pct := max(50-total/125, 5)
	return max(total*pct/100, 100)
}

// randomScorer gives every feasible node the same score.
type randomScorer struct{}

func (randomScorer) Name() string          { return Random }
func (randomScorer) Score(*Candidate) Rank { return Rank{} }

// bestFitScorer prefers the node with the least idle GPU share left after
// the placement, then the least cpu left.
type bestFitScorer struct{}

func (bestFitScorer) Name() string { return BestFit }

func (bestFitScorer) Score(c *Candidate) Rank {
	n := c.Node
	cpuLeft := float64(n.MilliCPU-n.UsedMilliCPU-c.Pod.MilliCPU) / float64(n.MilliCPU)
	return Rank{Primary: -float64(GPUFreeAfter(n, c.Shapes, c.Picks)), Secondary: -cpuLeft}
}

// fragScorer is FGD for DRA devices: it picks the node whose expected
// fragmentation (over the target workload's typical pods) grows least when
// the allocator's first fit takes the predicted devices; best fit breaks
// ties. Unlike FGD it cannot choose the GPU inside the node: the allocator
// does, so the prediction mirrors the allocator's device order. A node
// without GPUs has no fragmentation and no idle GPU share, so pods that
// need no GPU go there before they take the cpu a GPU pod will need.
type fragScorer struct{}

func (fragScorer) Name() string { return Frag }

func (fragScorer) Score(c *Candidate) Rank {
	n := c.Node
	before := n.Frag(c.Classes, c.Shapes, c.Buf)
	after := n.FragWith(c.Classes, c.Shapes, c.Buf, c.Pod.MilliCPU, c.Picks)
	return Rank{Primary: -round6(after - before), Secondary: -float64(GPUFreeAfter(n, c.Shapes, c.Picks))}
}

// round6 drops float noise so that equal growths tie.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
