package controller

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/score"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// MetricsInput is what the controller's metrics are computed from: its
// informer caches at scrape time.
type MetricsInput struct {
	// Policy may be nil (deleted): every namespace is then the open tenant.
	Policy *v1alpha1.TierPolicy
	Slices []*resourceapi.ResourceSlice
	Claims []*resourceapi.ResourceClaim
	// Classes are the managed DeviceClasses: a pending claim's tier is the
	// tierra.dev/tier label of the class it asks for ("" for the plain
	// classes).
	Classes []*resourceapi.DeviceClass
	// Namespaces maps a namespace to its labels, for its tenant.
	Namespaces map[string]map[string]string
	Now        time.Time
}

// tenantNS is one row of the cost metric, tierNS one of the pending one.
type (
	tenantNS struct{ tenant, namespace, tier string }
	tierNS   struct{ tier, namespace string }
)

// observation accumulates one scrape.
type observation struct {
	in        MetricsInput
	idx       map[tslices.DeviceKey]tslices.Published
	nodes     map[tierNode]*metrics.TierNodeSample
	pending   map[tierNS]int
	oldest    map[string]time.Duration
	cost      map[tenantNS]v1alpha1.MicroDollars // per hour (Published.Cost)
	typical   map[string][]score.Typical
	shared    map[string]*score.Shape // a tier's shared-GPU shape
	predict   map[string][]prediction
	allocated []*resourceapi.ResourceClaim
}

// observeMetrics computes the controller's metrics: per tier and node the GPUs
// published and the GPU-equivalents allocated (tslices.Published, the
// accounting of the TierPolicy status and `tierra plan`), stranded share
// (strandedModel), pending claims and their age, and allocated cost by
// tenant. The typical claims stranded share is measured against are the
// tier's claims seen, pending and allocated (allocatedClaim, pendingClaim).
func observeMetrics(in MetricsInput, model *strandedModel) metrics.ControllerSnapshot {
	o := &observation{
		in: in, idx: tslices.Index(in.Slices),
		nodes: map[tierNode]*metrics.TierNodeSample{}, pending: map[tierNS]int{},
		oldest: map[string]time.Duration{}, cost: map[tenantNS]v1alpha1.MicroDollars{},
		typical: map[string][]score.Typical{}, shared: sharedShapes(in.Slices), predict: map[string][]prediction{},
	}
	gpus := map[tslices.DeviceKey]bool{}
	for _, d := range o.idx {
		if !gpus[d.GPU] {
			gpus[d.GPU] = true
			o.node(d.Tier, d.GPU.Pool).GPUs++
		}
	}
	classTier := map[string]string{}
	for _, c := range in.Classes {
		classTier[c.Name] = c.Labels[tiers.LabelTier]
	}
	for _, c := range in.Claims {
		switch {
		case c.Status.Allocation != nil:
			o.allocatedClaim(c)
		case c.DeletionTimestamp == nil:
			o.pendingClaim(c, classTier)
		}
	}
	classes := map[string]*resourceapi.DeviceClass{}
	for _, c := range in.Classes {
		classes[c.Name] = c
	}
	for key, v := range model.stranded(strandedInput{slices: in.Slices, idx: o.idx, allocated: o.allocated,
		typical: o.typical, predict: o.predict, classes: classes}) {
		n := o.node(key.tier, key.node)
		n.StrandedGPUs, n.HasStranded = v, true
	}
	return o.snapshot()
}

func (o *observation) node(tier, node string) *metrics.TierNodeSample {
	key := tierNode{tier, node}
	if o.nodes[key] == nil {
		o.nodes[key] = &metrics.TierNodeSample{Tier: tier, Node: node}
	}
	return o.nodes[key]
}

// allocatedClaim books the claim's devices, cost and shape.
func (o *observation) allocatedClaim(c *resourceapi.ResourceClaim) {
	tenant := o.tenant(c.Namespace)
	shapes := map[string]*score.Typical{}
	ours := false
	for _, r := range c.Status.Allocation.Devices.Results {
		d, ok := o.idx[tslices.DeviceKey{Pool: r.Pool, Device: r.Device}]
		if r.Driver != driverName || !ok {
			continue
		}
		ours = true
		milli := d.MilliGPUs(r.ConsumedCapacity)
		o.node(d.Tier, r.Pool).AllocatedGPUs += float64(milli) / tslices.ComputeUnitsPerGPU
		o.cost[tenantNS{tenant, c.Namespace, d.Tier}] += d.Cost(r.ConsumedCapacity)
		t := shapes[d.Tier]
		if t == nil {
			t = &score.Typical{}
			shapes[d.Tier] = t
		}
		t.Num++
		t.Milli = max(t.Milli, milli)
	}
	if ours {
		o.allocated = append(o.allocated, c)
	}
	for tier, t := range shapes {
		o.typical[tier] = append(o.typical[tier], *t)
	}
}

// pendingClaim counts an unallocated claim in each tier it asks for and
// books its shape. On a tier of shared GPUs a request takes its count (its
// first subrequest's, as the scheduler tries it first) of shares sized as
// the allocator sizes them (requestShare); on any other tier FirstFit
// predicts what the tier's requests of the claim take (strandedModel).
func (o *observation) pendingClaim(c *resourceapi.ResourceClaim, classTier map[string]string) {
	shapes := map[string]*score.Typical{}
	requests := map[string][]resourceapi.DeviceRequest{}
	for _, r := range c.Spec.Devices.Requests {
		exact := r.Exactly
		if exact == nil && len(r.FirstAvailable) > 0 {
			sub := r.FirstAvailable[0]
			exact = &resourceapi.ExactDeviceRequest{DeviceClassName: sub.DeviceClassName, AllocationMode: sub.AllocationMode,
				Count: sub.Count, Capacity: sub.Capacity}
		}
		if exact == nil {
			continue
		}
		tier, ok := classTier[exact.DeviceClassName]
		if !ok {
			continue // not a Tierra class
		}
		t := shapes[tier]
		if t == nil {
			t = &score.Typical{}
			shapes[tier] = t
		}
		requests[tier] = append(requests[tier], r)
		if exact.AllocationMode == resourceapi.DeviceAllocationModeAll {
			continue
		}
		t.Num += int(max(exact.Count, 1))
		t.Milli = max(t.Milli, requestShare(exact, o.shared[tier]))
	}
	age := o.in.Now.Sub(c.CreationTimestamp.Time)
	for tier, t := range shapes {
		o.pending[tierNS{tier, c.Namespace}]++
		o.oldest[tier] = max(o.oldest[tier], age)
		switch {
		case tier == "":
		case o.shared[tier] == nil:
			cut := c.DeepCopy()
			cut.Spec.Devices = resourceapi.DeviceClaim{Requests: requests[tier]}
			o.predict[tier] = append(o.predict[tier], prediction{claim: cut, fallback: *t})
		case t.Num > 0:
			o.typical[tier] = append(o.typical[tier], *t)
		}
	}
}

// requestShare is the thousandths of a GPU one device of the request
// takes: a whole GPU, or on a shared GPU the compute it asks for (else the
// capacity's default) rounded as the allocator rounds it.
func requestShare(r *resourceapi.ExactDeviceRequest, shared *score.Shape) int64 {
	if shared == nil {
		return tslices.ComputeUnitsPerGPU
	}
	dim := shared.Dims[shared.Compute]
	var want int64
	if q, ok := capacityRequest(r, dim.Name); ok {
		want = q
	} else if dim.Policy != nil && dim.Policy.Default != nil {
		want = dim.Policy.Default.MilliValue()
	}
	need := make([]int64, len(shared.Dims))
	need[shared.Compute] = score.ConsumedMilli(want, dim)
	return shared.ShareOf(need)
}

func capacityRequest(r *resourceapi.ExactDeviceRequest, name resourceapi.QualifiedName) (int64, bool) {
	if r.Capacity == nil {
		return 0, false
	}
	q, ok := r.Capacity.Requests[name]
	return q.MilliValue(), ok
}

// sharedShapes is the shape of each tier's first shared GPU.
func sharedShapes(rs []*resourceapi.ResourceSlice) map[string]*score.Shape {
	out := map[string]*score.Shape{}
	for _, s := range rs {
		if s.Spec.Driver != driverName {
			continue
		}
		for _, d := range s.Spec.Devices {
			tier := tslices.StringAttribute(d, tslices.AttrTier)
			if _, done := out[tier]; done || tier == "" {
				continue
			}
			if sh, err := score.SharedShapeOf(d); err == nil {
				out[tier] = &sh
			}
		}
	}
	return out
}

// tenant resolves the namespace's tenant with pkg/tenancy; a selector that
// does not parse (an invalid policy, which admission refuses too) selects
// nothing.
func (o *observation) tenant(namespace string) string {
	t, err := tenancy.Resolve(o.in.Policy, o.in.Namespaces[namespace])
	if err != nil {
		return tenancy.Open
	}
	return t
}

// snapshot sorts what was observed. Tiers are the policy's in order, then
// any other tier devices or pending claims name, by name.
func (o *observation) snapshot() metrics.ControllerSnapshot {
	var snap metrics.ControllerSnapshot
	gpus, alloc := map[string]float64{}, map[string]float64{}
	for _, n := range o.nodes {
		snap.Nodes = append(snap.Nodes, *n)
		gpus[n.Tier] += n.GPUs
		alloc[n.Tier] += n.AllocatedGPUs
	}
	slices.SortFunc(snap.Nodes, func(a, b metrics.TierNodeSample) int {
		return cmp.Or(cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Node, b.Node))
	})
	var names []string
	if o.in.Policy != nil {
		for _, t := range o.in.Policy.Spec.Tiers {
			names = append(names, t.Name)
		}
	}
	var extra []string
	for tier := range gpus {
		extra = append(extra, tier)
	}
	for tier := range o.oldest {
		extra = append(extra, tier)
	}
	slices.Sort(extra)
	for _, tier := range slices.Compact(extra) {
		if !slices.Contains(names, tier) {
			names = append(names, tier)
		}
	}
	for _, tier := range names {
		t := metrics.TierSample{Tier: tier, OldestPendingSeconds: o.oldest[tier].Seconds()}
		if gpus[tier] > 0 {
			t.YieldRatio = alloc[tier] / gpus[tier]
		}
		snap.Tiers = append(snap.Tiers, t)
	}
	for key, n := range o.pending {
		snap.Pending = append(snap.Pending, metrics.PendingSample{Tier: key.tier, Namespace: key.namespace, Claims: n})
	}
	slices.SortFunc(snap.Pending, func(a, b metrics.PendingSample) int {
		return cmp.Or(cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Namespace, b.Namespace))
	})
	for key, price := range o.cost {
		snap.Costs = append(snap.Costs, metrics.CostSample{Tenant: key.tenant, Namespace: key.namespace, Tier: key.tier,
			DollarsPerHour: price.Dollars()})
	}
	slices.SortFunc(snap.Costs, func(a, b metrics.CostSample) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Tier, b.Tier))
	})
	return snap
}

var _ metrics.ControllerState = (*Controller)(nil)

// ControllerMetrics implements metrics.ControllerState from the informer
// caches. Until they have synced it reports nothing, rather than numbers
// of a half-listed cluster.
func (c *Controller) ControllerMetrics() (metrics.ControllerSnapshot, error) {
	for _, synced := range c.synced {
		if !synced() {
			return metrics.ControllerSnapshot{}, nil
		}
	}
	in := MetricsInput{Now: c.now(), Namespaces: map[string]map[string]string{}}
	var err error
	if in.Policy, err = c.policy(); apierrors.IsNotFound(err) {
		in.Policy = nil
	} else if err != nil {
		return metrics.ControllerSnapshot{}, err
	}
	if in.Slices, err = c.slices.List(labels.Everything()); err != nil {
		return metrics.ControllerSnapshot{}, fmt.Errorf("list ResourceSlices: %w", err)
	}
	if in.Claims, err = c.claims.List(labels.Everything()); err != nil {
		return metrics.ControllerSnapshot{}, fmt.Errorf("list ResourceClaims: %w", err)
	}
	if in.Classes, err = c.classes.List(labels.Everything()); err != nil {
		return metrics.ControllerSnapshot{}, fmt.Errorf("list managed DeviceClasses: %w", err)
	}
	if c.namespaces != nil {
		nss, err := c.namespaces.List(labels.Everything())
		if err != nil {
			return metrics.ControllerSnapshot{}, fmt.Errorf("list Namespaces: %w", err)
		}
		for _, ns := range nss {
			in.Namespaces[ns.Name] = ns.Labels
		}
	}
	return observeMetrics(in, c.stranded), nil
}
