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
	"time"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/resourceclaim"
	"k8s.io/dynamic-resource-allocation/structured"
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
	return NewWithArgs(ctx, args, h.SharedDRAManager())
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
		inv: score.NewInventory(args.Driver, table),
		cel: cel.NewCache(256, cel.Features{EnableConsumableCapacity: true}),
	}, nil
}

// Name implements fwk.Plugin.
func (p *Plugin) Name() string { return Name }

// cycle is what PreScore gathers once per pod for every node's Score.
type cycle struct {
	nodes   map[string][]score.Device
	alloc   *structured.AllocatedState
	shapes  []score.Shape
	classes []score.Class
	demand  *score.Demand
	cpu     int64
	memory  int64
	// ranks[i] is the rank of nodes[i] of PreScore; index maps node names.
	index map[string]int
	ranks []score.Rank
}

// Clone implements fwk.StateData; the cycle is read-only after PreScore
// except for ranks, which only this cycle's Score writes.
func (c *cycle) Clone() fwk.StateData { return c }

// PreScore gathers the DRA state once per pod.
func (p *Plugin) PreScore(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	rs, err := p.dra.ResourceSlices().ListWithDeviceTaintRules()
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("list resource slices: %w", err))
	}
	c := &cycle{nodes: p.inv.Nodes(rs), index: make(map[string]int, len(nodes)), ranks: make([]score.Rank, len(nodes))}
	c.shapes, c.classes = p.table.Snapshot()
	if c.alloc, err = p.allocated(ctx); err != nil {
		return fwk.AsStatus(err)
	}
	claims, err := p.claims(pod)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if c.demand, err = score.NewDemand(claims, p.dra.DeviceClasses().Get, p.cel, c.shapes); err != nil {
		return fwk.AsStatus(err)
	}
	c.cpu, c.memory = podRequests(pod)
	for i, n := range nodes {
		c.index[n.Node().Name] = i
	}
	state.Write(stateKey, c)
	return nil
}

// allocated is the allocated state the DynamicResources plugin also
// gathers, retried (as it does) while the claim tracker is being modified.
func (p *Plugin) allocated(ctx context.Context) (*structured.AllocatedState, error) {
	var a *structured.AllocatedState
	var last error
	err := wait.PollUntilContextTimeout(ctx, time.Microsecond, 5*time.Second, true, func(context.Context) (bool, error) {
		a, last = p.dra.ResourceClaims().GatherAllocatedState()
		return last == nil && a != nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("gather allocated state: %w (last: %w)", err, last)
	}
	return a, nil
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

type scratch struct {
	frees []int64
	picks []score.Pick
}

// Score ranks one node; NormalizeScore turns the ranks into scores.
func (p *Plugin) Score(ctx context.Context, state fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	data, err := state.Read(stateKey)
	if err != nil {
		return 0, fwk.AsStatus(fmt.Errorf("read %s state: %w", Name, err))
	}
	c := data.(*cycle)
	name := ni.Node().Name
	i, ok := c.index[name]
	if !ok {
		return 0, nil
	}
	c.ranks[i] = p.rank(ctx, c, ni)
	return 0, nil
}

func (p *Plugin) rank(ctx context.Context, c *cycle, ni fwk.NodeInfo) score.Rank {
	devs := c.nodes[ni.Node().Name]
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	host := score.Host{MilliCPU: alloc.GetMilliCPU(), Memory: alloc.GetMemory(), UsedMilliCPU: used.GetMilliCPU(), UsedMemory: used.GetMemory()}
	node := score.NodeOf(host, devs, c.shapes, c.alloc)
	pod := c.demand.On(ctx, c.cpu, c.memory, devs)
	b := bufs.Get().(*scratch)
	defer bufs.Put(b)
	picks, ok := score.FirstFit(node, pod, b.picks)
	if !ok {
		if len(devs) > 0 {
			// The filter passed on devices the prediction does not see
			// (another driver's, or a request it cannot model): rank the
			// node as if the pod took no Tierra GPU.
			return p.hostOnly(c, node, pod, b)
		}
		return worst
	}
	return p.scorer.Score(&score.Candidate{Node: node, Pod: pod, Picks: picks, Shapes: c.shapes, Classes: c.classes, Buf: b.frees})
}

func (p *Plugin) hostOnly(c *cycle, node *score.Node, pod *score.Pod, b *scratch) score.Rank {
	host := &score.Pod{MilliCPU: pod.MilliCPU, Memory: pod.Memory}
	return p.scorer.Score(&score.Candidate{Node: node, Pod: host, Shapes: c.shapes, Classes: c.classes, Buf: b.frees})
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
		if i, ok := c.index[s.Name]; ok {
			ranks[k] = c.ranks[i]
		} else {
			ranks[k] = worst
		}
	}
	for k, v := range score.Normalize(ranks) {
		scores[k].Score = v
	}
	return nil
}
