// Package yield is the TierraYield Score plugin: it ranks the nodes that
// passed filtering with pkg/score, reading slices, allocated devices and
// consumed capacity from the framework's shared DRA manager (no informers
// or API calls of its own) and predicting the devices the allocator's first
// fit takes on each node, as `tierra sim` does.
package yield

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/resourceclaim"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/tierra-gpu/tierra/pkg/score"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "TierraYield"

const stateKey fwk.StateKey = Name

// Plugin is TierraYield.
type Plugin struct {
	dra    fwk.SharedDRAManager
	scorer score.Scorer
	table  *score.Table
	inv    *score.Inventory
	cel    *cel.Cache
	views  views
	driver string
	// snapshot lists every node of the cycle's snapshot (nil in tests).
	snapshot func() fwk.SharedLister
}

var (
	_ fwk.PreScorePlugin  = (*Plugin)(nil)
	_ fwk.ScorePlugin     = (*Plugin)(nil)
	_ fwk.ScoreExtensions = (*Plugin)(nil)
)

// New is the plugin factory for app.WithPlugin.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := decodeArgs(obj)
	if err != nil {
		return nil, err
	}
	p, err := NewWithArgs(ctx, args, h.SharedDRAManager())
	if err != nil {
		return nil, err
	}
	p.snapshot = h.SnapshotSharedLister
	return p, nil
}

// NewWithArgs builds the plugin on a DRA manager (the framework's, or a
// test's).
func NewWithArgs(ctx context.Context, args Args, dra fwk.SharedDRAManager) (*Plugin, error) {
	if dra == nil {
		return nil, errors.New("no shared DRA manager: TierraYield needs the DynamicResourceAllocation feature")
	}
	s, err := score.NewScorer(args.Scorer)
	if err != nil {
		return nil, fmt.Errorf("%s args: %w", Name, err)
	}
	table := score.NewTable(args.TypicalPods)
	klog.FromContext(ctx).Info("TierraYield scorer", "scorer", s.Name(), "driver", args.Driver, "typicalPods", len(args.TypicalPods))
	return &Plugin{
		dra: dra, scorer: s, table: table,
		inv: score.NewInventory(args.Driver, table), driver: args.Driver,
		cel: cel.NewCache(256, cel.Features{EnableConsumableCapacity: true}),
	}, nil
}

// Name implements fwk.Plugin.
func (p *Plugin) Name() string { return Name }

// cycle is what PreScore gathers once per pod for every node's Score.
type cycle struct {
	nodes   map[string]*score.NodeDevices
	shapes  []score.Shape
	classes []score.Class
	demand  *score.Demand
	cpu     int64
	memory  int64
	// ranks has room for the rank of every node of PreScore; Score puts a
	// node's rank at the next free place (next) and returns that place as
	// the node's raw score, which NormalizeScore reads back.
	ranks []score.Rank
	next  atomic.Int64
}

// Clone implements fwk.StateData; the cycle is read-only after PreScore
// except for ranks, which only this cycle's Score writes.
func (c *cycle) Clone() fwk.StateData { return c }

// PreScore reads the slices (parsed again only when they change) and the
// pod's claims once per pod. What allocated claims hold of each node's
// devices is read in Score, per node, only when the node changed.
func (p *Plugin) PreScore(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	rs, err := p.dra.ResourceSlices().ListWithDeviceTaintRules()
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("list resource slices: %w", err))
	}
	c := &cycle{nodes: p.inv.Nodes(rs), ranks: make([]score.Rank, len(nodes))}
	c.shapes, c.classes = p.table.Snapshot()
	claims, err := p.claims(pod)
	if err != nil {
		return fwk.AsStatus(err)
	}
	res := score.Resolver{Classes: p.dra.DeviceClasses().Get, CEL: p.cel, Shapes: c.shapes, Table: p.table}
	if c.demand, err = score.NewDemand(claims, res); err != nil {
		return fwk.AsStatus(err)
	}
	c.cpu, c.memory = podRequests(pod)
	p.sweep()
	state.Write(stateKey, c)
	return nil
}

// claims are the pod's ResourceClaims the DRA manager knows.
func (p *Plugin) claims(pod *v1.Pod) ([]*resourceapi.ResourceClaim, error) {
	var out []*resourceapi.ResourceClaim
	for i := range pod.Spec.ResourceClaims {
		name, _, err := resourceclaim.Name(pod, &pod.Spec.ResourceClaims[i])
		if err != nil {
			return nil, fmt.Errorf("claim of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if name == nil {
			continue
		}
		c, err := p.dra.ResourceClaims().Get(pod.Namespace, *name)
		if err != nil {
			return nil, fmt.Errorf("claim %s/%s: %w", pod.Namespace, *name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// podRequests is the pod's cpu and memory as the scheduler counts them
// (containers summed; init containers and overhead as upper bounds).
func podRequests(pod *v1.Pod) (milliCPU, memory int64) {
	for _, c := range pod.Spec.Containers {
		milliCPU += c.Resources.Requests.Cpu().MilliValue()
		memory += c.Resources.Requests.Memory().Value()
	}
	for _, c := range pod.Spec.InitContainers {
		milliCPU = max(milliCPU, c.Resources.Requests.Cpu().MilliValue())
		memory = max(memory, c.Resources.Requests.Memory().Value())
	}
	if pod.Spec.Overhead != nil {
		milliCPU += pod.Spec.Overhead.Cpu().MilliValue()
		memory += pod.Spec.Overhead.Memory().Value()
	}
	return milliCPU, memory
}

// worst ranks a node whose devices the prediction cannot fit.
var worst = score.Rank{Primary: -math.MaxFloat64, Secondary: -math.MaxFloat64}

// bufs are per-goroutine scratch buffers for Score.
var bufs = sync.Pool{New: func() any { return &scratch{frees: make([]int64, 0, 16), picks: make([]score.Pick, 0, 16)} }}

// scratch is one goroutine's memory for ranking a node: nothing is
// allocated per node once it has grown.
type scratch struct {
	frees []int64
	picks []score.Pick
	pod   score.PodBuf
	host  score.Pod
	cand  score.Candidate
}

// Score ranks one node; NormalizeScore turns the ranks into scores.
func (p *Plugin) Score(ctx context.Context, state fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	data, err := state.Read(stateKey)
	if err != nil {
		return 0, fwk.AsStatus(fmt.Errorf("read %s state: %w", Name, err))
	}
	c := data.(*cycle)
	i := c.next.Add(1) - 1
	if i >= int64(len(c.ranks)) {
		// Not a node of PreScore: the framework never asks.
		return -1, nil
	}
	c.ranks[i] = p.rank(ctx, c, ni)
	return i, nil
}

func (p *Plugin) rank(ctx context.Context, c *cycle, ni fwk.NodeInfo) score.Rank {
	devs := c.nodes[ni.Node().Name]
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	host := score.Host{MilliCPU: alloc.GetMilliCPU(), Memory: alloc.GetMemory(), UsedMilliCPU: used.GetMilliCPU(), UsedMemory: used.GetMemory()}
	b := bufs.Get().(*scratch)
	defer bufs.Put(b)
	e := p.views.entry(ni.Node().Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	node := e.view(ni, host, devs, c.shapes, p.allocatedOn)
	pod := c.demand.On(ctx, c.cpu, c.memory, devs, &b.pod)
	picks, ok := score.FirstFit(node, pod, b.picks)
	if picks != nil {
		b.picks = picks[:0]
	}
	if cap(b.frees) < len(node.GPUs) {
		b.frees = make([]int64, 0, len(node.GPUs))
	}
	if !ok {
		if len(node.GPUs) > 0 {
			// The filter passed on devices the prediction does not see
			// (another driver's, or a request it cannot model): rank the
			// node as if the pod took no Tierra GPU.
			return p.hostOnly(c, node, pod, b)
		}
		return worst
	}
	b.cand = score.Candidate{Node: node, Pod: pod, Picks: picks, Shapes: c.shapes, Classes: c.classes, Buf: b.frees}
	return p.scorer.Score(&b.cand)
}

func (p *Plugin) hostOnly(c *cycle, node *score.Node, pod *score.Pod, b *scratch) score.Rank {
	b.host = score.Pod{MilliCPU: pod.MilliCPU, Memory: pod.Memory}
	b.cand = score.Candidate{Node: node, Pod: &b.host, Shapes: c.shapes, Classes: c.classes, Buf: b.frees}
	return p.scorer.Score(&b.cand)
}

// ScoreExtensions implements fwk.ScorePlugin.
func (p *Plugin) ScoreExtensions() fwk.ScoreExtensions { return p }

// NormalizeScore maps the cycle's ranks to 0-100: only the best ranked
// nodes get 100.
func (p *Plugin) NormalizeScore(_ context.Context, state fwk.CycleState, _ *v1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	data, err := state.Read(stateKey)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("read %s state: %w", Name, err))
	}
	c := data.(*cycle)
	ranks := make([]score.Rank, len(scores))
	for k, s := range scores {
		if s.Score >= 0 && s.Score < c.next.Load() && s.Score < int64(len(c.ranks)) {
			ranks[k] = c.ranks[s.Score]
		} else {
			ranks[k] = worst
		}
	}
	for k, v := range score.Normalize(ranks) {
		scores[k].Score = v
	}
	return nil
}
