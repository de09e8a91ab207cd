package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// prepared is a Cluster read the way tierra-scheduler reads one: every
// node's devices through score.Inventory into one shape table with the
// trace's typical pods, shared read-only by every seed.
type prepared struct {
	cl      *Cluster
	devices []*score.NodeDevices
	shapes  []score.Shape
	classes []score.Class
	table   *score.Table
	index   map[slices.DeviceKey]slices.Published
	// tierGPUs counts each tier's physical GPUs.
	tierGPUs map[string]int
	lister   allocator.ClassLister
}

func prepare(cl *Cluster, typical []score.Typical) *prepared {
	p := &prepared{cl: cl, table: score.NewTable(typical), lister: allocator.NewClassLister(cl.Classes...), tierGPUs: map[string]int{}}
	var all []*resourceapi.ResourceSlice
	for _, n := range cl.Nodes {
		all = append(all, n.Slices...)
	}
	byNode := score.NewInventory(DriverName, p.table).Nodes(all)
	for _, n := range cl.Nodes {
		p.devices = append(p.devices, byNode[n.Name])
	}
	p.shapes, p.classes = p.table.Snapshot()
	p.index = slices.Index(all)
	seen := map[slices.DeviceKey]bool{}
	for _, d := range p.index {
		if !seen[d.GPU] {
			seen[d.GPU] = true
			p.tierGPUs[d.Tier]++
		}
	}
	return p
}

// policyEnv is one seed of one scorer on one prepared cluster.
type policyEnv struct {
	p      *prepared
	views  []score.Node
	hosts  []score.Host
	alloc  []structured.AllocatedState
	nodes  []*v1.Node
	cache  *cel.Cache
	scorer Scorer
	rng    *rand.Rand
	claims map[routeKey]*routed
	buf    score.PodBuf
	picks  []score.Pick
	fbuf   []int64
	cands  []scored
	start  int
	stats  PolicySeed
	allocT time.Duration
}

// routed is a pod shape's claim and its demand as the scorer reads it.
type routed struct {
	claim  *resourceapi.ResourceClaim
	demand *score.Demand
}

func newPolicyEnv(p *prepared, scorer Scorer, seed int64) *policyEnv {
	e := &policyEnv{p: p, cache: allocator.NewCELCache(256, Features), scorer: scorer,
		rng: rand.New(rand.NewPCG(uint64(seed), 0x7469657272)), claims: map[routeKey]*routed{}, fbuf: make([]int64, 0, 64)}
	n := len(p.cl.Nodes)
	e.views, e.hosts, e.alloc, e.nodes = make([]score.Node, n), make([]score.Host, n), make([]structured.AllocatedState, n), make([]*v1.Node, n)
	for i, cn := range p.cl.Nodes {
		e.hosts[i] = score.Host{MilliCPU: cn.MilliCPU, Memory: cn.Memory}
		e.alloc[i] = structured.AllocatedState{
			AllocatedDevices:         sets.New[structured.DeviceID](),
			AllocatedSharedDeviceIDs: sets.New[structured.SharedDeviceID](),
			AggregatedCapacity:       structured.NewConsumedCapacityCollection(),
		}
		e.nodes[i] = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: cn.Name, Labels: cn.Labels}}
		score.NodeInto(&e.views[i], e.hosts[i], p.devices[i], p.shapes, &e.alloc[i])
	}
	return e
}

func (e *policyEnv) route(pod Pod) (*routed, error) {
	if pod.NumGPU == 0 {
		return nil, nil
	}
	key := routeKeyOf(pod)
	if r, ok := e.claims[key]; ok {
		return r, nil
	}
	claim, err := e.p.cl.ClaimFor(pod, fmt.Sprintf("gpu-%d", len(e.claims)))
	if err != nil {
		return nil, err
	}
	res := score.Resolver{Classes: e.p.lister.Get, CEL: e.cache, Shapes: e.p.shapes, Table: e.p.table}
	d, err := score.NewDemand([]*resourceapi.ResourceClaim{claim}, res)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", e.p.cl.Name, err)
	}
	r := &routed{claim: claim, demand: d}
	e.claims[key] = r
	return r, nil
}

// collect scores the nodes where the pod fits, as tierra-scheduler's
// filter (the prefilter: FirstFit on the node's devices) and Score do.
func (e *policyEnv) collect(ctx context.Context, pod Pod, r *routed) {
	e.cands = e.cands[:0]
	n := len(e.views)
	want := n
	if s, ok := e.scorer.(score.Sampler); ok {
		want = s.NodesToFind(n)
	}
	visited := 0
	host := score.Pod{MilliCPU: pod.MilliCPU, Memory: pod.MemoryMiB << 20}
	for k := 0; k < n && len(e.cands) < want; k++ {
		i := (e.start + k) % n
		visited++
		view := &e.views[i]
		if !score.FitsHost(view, &host) {
			continue
		}
		sp, picks := &host, []score.Pick(nil)
		if r != nil {
			sp = r.demand.On(ctx, host.MilliCPU, host.Memory, e.p.devices[i], &e.buf)
			var ok bool
			if picks, ok = score.FirstFit(view, sp, e.picks); !ok {
				continue
			}
			e.picks = picks[:0]
		}
		c := score.Candidate{Node: view, Pod: sp, Picks: picks, Shapes: e.p.shapes, Classes: e.p.classes, Buf: e.fbuf}
		e.cands = append(e.cands, scored{node: i, r: e.scorer.Score(&c), tie: e.rng.Uint64()})
	}
	if want < n {
		e.start = (e.start + visited) % n
	}
}

// best removes and returns the highest ranked candidate.
func (e *policyEnv) best() (scored, bool) { return popBest(&e.cands) }

// place schedules one pod: the best ranked node on which the scheduler's
// allocator allocates the claim. It returns the allocation's size per tier
// (thousandths of a GPU), nil when the pod found no node.
func (e *policyEnv) place(ctx context.Context, pod Pod) (map[string]int64, error) {
	r, err := e.route(pod)
	if err != nil {
		return nil, err
	}
	e.collect(ctx, pod, r)
	for {
		c, ok := e.best()
		if !ok {
			return nil, nil
		}
		i := c.node
		if r == nil {
			e.book(i, pod)
			return map[string]int64{}, nil
		}
		res, err := e.allocate(ctx, i, r.claim)
		if err != nil {
			return nil, err
		}
		if res == nil {
			e.stats.Divergence++
			continue
		}
		held := map[string]int64{}
		for _, d := range res.Devices.Results {
			pub, ok := e.p.index[slices.DeviceKey{Pool: d.Pool, Device: d.Device}]
			if !ok {
				return nil, fmt.Errorf("allocator chose unpublished device %s/%s on %s", d.Pool, d.Device, e.nodes[i].Name)
			}
			held[pub.Tier] += pub.MilliGPUs(d.ConsumedCapacity)
			if d.ShareID != nil {
				id := structured.MakeDeviceID(d.Driver, d.Pool, d.Device)
				e.alloc[i].AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(id, d.ShareID))
			}
		}
		score.AddAllocation(&e.alloc[i], DriverName, res)
		e.book(i, pod)
		return held, nil
	}
}

// book adds the pod's cpu and memory to node i and renews its view.
func (e *policyEnv) book(i int, pod Pod) {
	e.hosts[i].UsedMilliCPU += pod.MilliCPU
	e.hosts[i].UsedMemory += pod.MemoryMiB << 20
	score.NodeInto(&e.views[i], e.hosts[i], e.p.devices[i], e.p.shapes, &e.alloc[i])
}

// allocate asks the scheduler's allocator for the claim on node i.
func (e *policyEnv) allocate(ctx context.Context, i int, claim *resourceapi.ResourceClaim) (*resourceapi.AllocationResult, error) {
	t0 := time.Now()
	defer func() { e.allocT += time.Since(t0) }()
	a, err := structured.NewAllocator(ctx, Features, e.alloc[i], e.p.lister, e.p.cl.Nodes[i].Slices, e.cache)
	if err != nil {
		return nil, fmt.Errorf("new allocator: %w", err)
	}
	res, err := a.Allocate(ctx, e.nodes[i], []*resourceapi.ResourceClaim{claim})
	if err != nil && !errors.Is(err, structured.ErrFailedAllocationOnNode) {
		return nil, fmt.Errorf("allocate %s on %s: %w", claim.Name, e.nodes[i].Name, err)
	}
	if err != nil || len(res) == 0 {
		return nil, nil
	}
	return &res[0], nil
}
