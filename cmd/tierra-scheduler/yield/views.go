package yield

import (
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceclaim"
	"k8s.io/dynamic-resource-allocation/structured"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/tierra-gpu/tierra/pkg/score"
)

// views keeps each node's scorer view between cycles. A node's view only
// changes when its pods do (the scheduler bumps the NodeInfo's generation
// when it assumes, binds or removes a pod, and claims are allocated for the
// pods that use them) or when its slices do, so a cycle re-reads only the
// nodes that changed, from the claims of their pods, instead of copying the
// allocated state of the whole cluster as GatherAllocatedState does.
type views struct {
	m sync.Map
	// n counts the entries; sweep drops those of nodes gone.
	n atomic.Int64
}

// view is one node's cached view; mu is held while a Score uses it.
type view struct {
	mu   sync.Mutex
	gen  int64
	devs *score.NodeDevices
	host score.Host
	node *score.Node
}

func (v *views) entry(name string) *view {
	if e, ok := v.m.Load(name); ok {
		return e.(*view)
	}
	e, loaded := v.m.LoadOrStore(name, &view{})
	if !loaded {
		v.n.Add(1)
	}
	return e.(*view)
}

// sweep forgets the views of nodes the snapshot no longer has once there
// are many more views than nodes.
func (p *Plugin) sweep() {
	if p.snapshot == nil {
		return
	}
	nodes, err := p.snapshot().NodeInfos().List()
	if err != nil || p.views.n.Load() <= int64(2*len(nodes)+64) {
		return
	}
	p.views.drop(nodes)
}

func (v *views) drop(nodes []fwk.NodeInfo) {
	live := make(map[string]bool, len(nodes))
	for _, ni := range nodes {
		live[ni.Node().Name] = true
	}
	v.m.Range(func(k, _ any) bool {
		if !live[k.(string)] {
			v.m.Delete(k)
			v.n.Add(-1)
		}
		return true
	})
}

// view returns the node's view, rebuilding it when the node, its pods or
// its devices changed.
func (e *view) view(ni fwk.NodeInfo, host score.Host, devs *score.NodeDevices, shapes []score.Shape, allocated func(fwk.NodeInfo) *structured.AllocatedState) *score.Node {
	if e.node == nil || e.gen != ni.GetGeneration() || e.devs != devs || e.host != host {
		var alloc *structured.AllocatedState
		if devs != nil {
			alloc = allocated(ni)
		}
		e.node = score.NodeOf(host, devs, shapes, alloc)
		e.gen, e.devs, e.host = ni.GetGeneration(), devs, host
	}
	e.node.Changed()
	return e.node
}

// allocatedOn is what the claims of the node's pods hold of its devices:
// the allocation in the claim's status or, while the binding cycle has not
// written it yet, the tracker's pending allocation (each claim once).
func (p *Plugin) allocatedOn(ni fwk.NodeInfo) *structured.AllocatedState {
	a := &structured.AllocatedState{AllocatedDevices: sets.New[structured.DeviceID](), AggregatedCapacity: structured.NewConsumedCapacityCollection()}
	claims := p.dra.ResourceClaims()
	var seen sets.Set[types.UID]
	for _, pi := range ni.GetPods() {
		pod := pi.GetPod()
		for i := range pod.Spec.ResourceClaims {
			name, _, err := resourceclaim.Name(pod, &pod.Spec.ResourceClaims[i])
			if err != nil || name == nil {
				continue
			}
			c, err := claims.Get(pod.Namespace, *name)
			if err != nil || seen.Has(c.UID) {
				continue
			}
			if seen == nil {
				seen = sets.New[types.UID]()
			}
			seen.Insert(c.UID)
			alloc := c.Status.Allocation
			if alloc == nil {
				alloc = claims.GetPendingAllocation(c.UID)
			}
			score.AddAllocation(a, p.driver, alloc)
		}
	}
	return a
}
