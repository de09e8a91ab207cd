package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/cel"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/score"
	"k8s.io/dynamic-resource-allocation/structured"
)

// Features is the allocator feature set the simulation runs with: the one
// kube-scheduler 1.37 passes by default.
var Features = allocator.SchedulerFeatures

// env is one seed's simulation: the cluster state and the tools to
// allocate on it.
type env struct {
	pub     *published
	states  []nodeState
	shapes  []score.Shape
	classes []score.Class
	claims  *claimClasses
	lister  allocator.ClassLister
	cache   *cel.Cache
	scorer  Scorer
	rng     *rand.Rand
	verify  bool
	fbuf    []int64
	pbuf    []score.Pick
	cands   []scored
	start   int
	stats   SeedResult
	allocT  time.Duration
	// last is the node the last placed pod went to.
	last int
	// seen are the arrivals so far, when the typical pods are learnt online.
	seen []Pod
}

type scored struct {
	node   int
	r      score.Rank
	tie    uint64
	picked []score.Pick
}

func newEnv(pub *published, classes []score.Class, scorer Scorer, seed int64, verify bool) *env {
	return &env{
		pub: pub, states: newNodeStates(pub), shapes: pub.shapes, classes: classes,
		fbuf: make([]int64, 0, 64), pbuf: make([]score.Pick, 0, 16),
		claims: newClaimClasses(pub.shapes), lister: allocator.NewClassLister(deviceClass()),
		cache:  allocator.NewCELCache(64, Features),
		scorer: scorer, rng: rand.New(rand.NewPCG(uint64(seed), 0x7469657272)), verify: verify,
	}
}

// collect scores the feasible nodes for a pod.
func (e *env) collect(p Pod, cc *claimClass) {
	e.cands = e.cands[:0]
	n := len(e.states)
	want := n
	if s, ok := e.scorer.(score.Sampler); ok {
		want = s.NodesToFind(n)
	}
	sp := scorePod(p, cc)
	visited := 0
	for k := 0; k < n && len(e.cands) < want; k++ {
		i := (e.start + k) % n
		visited++
		s := &e.states[i]
		picked, ok := s.feasible(sp, e.pbuf)
		if !ok {
			continue
		}
		c := score.Candidate{Node: &s.Node, Pod: sp, Picks: picked, Shapes: e.shapes, Classes: e.classes, Buf: e.fbuf}
		e.cands = append(e.cands, scored{node: i, r: e.scorer.Score(&c), tie: e.rng.Uint64(), picked: append([]score.Pick(nil), picked...)})
	}
	if want < n {
		e.start = (e.start + visited) % n
	}
}

// best removes and returns the highest ranked candidate.
func (e *env) best() (scored, bool) { return popBest(&e.cands) }

// popBest removes and returns the highest ranked of cands: the best score,
// ties broken by the random tie value.
func popBest(cands *[]scored) (scored, bool) {
	cs := *cands
	if len(cs) == 0 {
		return scored{}, false
	}
	b := 0
	for i := 1; i < len(cs); i++ {
		c, o := cs[i], cs[b]
		if o.r.Less(c.r) || (c.r == o.r && c.tie > o.tie) {
			b = i
		}
	}
	out := cs[b]
	cs[b] = cs[len(cs)-1]
	*cands = cs[:len(cs)-1]
	return out, true
}

// allocate asks the real allocator for the claim on one node.
func (e *env) allocate(ctx context.Context, s *nodeState, cc *claimClass) (*resourceapi.AllocationResult, error) {
	t0 := time.Now()
	defer func() { e.allocT += time.Since(t0) }()
	e.stats.AllocatorCalls++
	a, err := structured.NewAllocator(ctx, Features, s.alloc, e.lister, s.slices, e.cache)
	if err != nil {
		return nil, fmt.Errorf("new allocator: %w", err)
	}
	res, err := a.Allocate(ctx, s.node, []*resourceapi.ResourceClaim{cc.claim})
	if err != nil && !errors.Is(err, structured.ErrFailedAllocationOnNode) {
		return nil, fmt.Errorf("allocate %s on %s: %w", cc.claim.Name, s.trace.Name, err)
	}
	if err != nil || len(res) == 0 {
		return nil, nil
	}
	return &res[0], nil
}

// place schedules one pod; it returns whether the pod was placed.
func (e *env) place(ctx context.Context, p Pod) (bool, error) {
	cc, err := e.claims.get(p)
	if err != nil {
		return false, err
	}
	if e.verify && cc != nil {
		if err := e.verifyPrefilter(ctx, p, cc); err != nil {
			return false, err
		}
	}
	e.collect(p, cc)
	for {
		c, ok := e.best()
		if !ok {
			return false, nil
		}
		s := &e.states[c.node]
		if cc == nil {
			s.addHost(p)
			e.last = c.node
			return true, nil
		}
		res, err := e.allocate(ctx, s, cc)
		if err != nil {
			return false, err
		}
		if res == nil {
			e.stats.Divergence++
			continue
		}
		e.stats.Claims++
		if err := s.apply(p, *res, e.shapes); err != nil {
			return false, err
		}
		e.last = c.node
		return true, nil
	}
}

// verifyPrefilter runs the allocator on every node that passes the host
// filter and counts the nodes where it disagrees with the prefilter.
func (e *env) verifyPrefilter(ctx context.Context, p Pod, cc *claimClass) error {
	sp := scorePod(p, cc)
	for i := range e.states {
		s := &e.states[i]
		if !score.FitsHost(&s.Node, sp) {
			continue
		}
		res, err := e.allocate(ctx, s, cc)
		if err != nil {
			return err
		}
		if _, fits := score.FirstFit(&s.Node, sp, e.pbuf); (res != nil) != fits {
			e.stats.Divergence++
		}
	}
	return nil
}

// progress reports a finished seed.
func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		_, _ = fmt.Fprintf(w, format, args...)
	}
}
