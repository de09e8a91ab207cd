// Package plan places ResourceClaims on a set of nodes offline: each node's
// GPUs are published through pkg/slices, the TierPolicy is rendered into
// DeviceClasses through pkg/tiers, and every claim goes through the
// scheduler's own allocator (pkg/allocator). It answers an admin's "where
// would these claims land, and what would they cost?" and drives the demo
// until a control plane runs it for real.
package plan

import (
	"context"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Input is a cluster of nodes, its policy, and the claims to place in order.
type Input struct {
	Nodes  []slices.Node
	Policy *v1alpha1.TierPolicy
	Claims []*resourceapi.ResourceClaim
}

// Placement is where one claim landed.
type Placement struct {
	// Claim is "namespace/name".
	Claim string
	// Classes are the DeviceClasses of the allocated requests.
	Classes []string
	// Tiers are the tiers of the allocated devices.
	Tiers []string
	// Node is empty when no node could take the claim.
	Node    string
	Devices []string
	// Cost is the claim's price per hour: the devices' costPerHour, and for
	// shares of a GPU the consumed compute times costPerComputeUnitHour.
	Cost v1alpha1.MicroDollars
	// GPUs is the claim's size in GPU-equivalents (a MIG slice counts its
	// memory slices over the GPU's, a share its compute over the GPU's).
	GPUs float64
}

// NodeYield is how much of one node's published GPU capacity is allocated.
type NodeYield struct {
	Node      string
	GPUs      int
	Allocated float64
}

// Result is the outcome of a plan.
type Result struct {
	Classes    []*resourceapi.DeviceClass
	Placements []Placement
	Nodes      []NodeYield
	// Devices is the number of devices published over all nodes.
	Devices int
	// RowHeading names what a placement row is; "" means CLAIM.
	RowHeading string
}

// Run places the claims in order. Nodes are tried in the order given and the
// first that fits wins: kube-scheduler would score the feasible nodes; the
// device choice inside a node is the allocator's, exactly as in the scheduler.
func Run(ctx context.Context, in Input) (*Result, error) {
	if in.Policy == nil {
		return nil, fmt.Errorf("plan: a TierPolicy is required")
	}
	if errs := in.Policy.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("tier policy %q: %w", in.Policy.Name, errs.ToAggregate())
	}
	classes, err := tiers.Render(in.Policy)
	if err != nil {
		return nil, fmt.Errorf("render device classes: %w", err)
	}
	var all []*resourceapi.ResourceSlice
	res := &Result{Classes: classes}
	for _, n := range in.Nodes {
		dr, err := slices.Build(n, in.Policy)
		if err != nil {
			return nil, fmt.Errorf("publish node %s: %w", n.Name, err)
		}
		all = append(all, slices.ResourceSlices(n.Name, dr)...)
		res.Nodes = append(res.Nodes, NodeYield{Node: n.Name, GPUs: len(n.Machine.GPUs)})
	}
	idx := slices.Index(all)
	res.Devices = len(idx)
	cluster := allocator.NewCluster(all, classes...)
	for _, claim := range in.Claims {
		p, err := place(ctx, cluster, in.Nodes, claim, idx)
		if err != nil {
			return nil, err
		}
		res.add(p)
	}
	return res, nil
}

// add records a placement and counts its GPUs on its node.
func (res *Result) add(p Placement) {
	for i := range res.Nodes {
		if res.Nodes[i].Node == p.Node {
			res.Nodes[i].Allocated += p.GPUs
		}
	}
	res.Placements = append(res.Placements, p)
}

// place tries the claim on every node and keeps the node where its
// firstAvailable requests got their earliest subrequests, as kube-scheduler
// 1.37's DynamicResources scoring prefers; ties go to the earlier node.
func place(ctx context.Context, c *allocator.Cluster, nodes []slices.Node, claim *resourceapi.ResourceClaim, idx map[slices.DeviceKey]slices.Published) (Placement, error) {
	p := Placement{Claim: claim.Namespace + "/" + claim.Name}
	var best *resourceapi.AllocationResult
	bestRank := 0
	for _, n := range nodes {
		alloc, err := c.Try(ctx, n.Name, claim)
		if err != nil {
			return p, err
		}
		if alloc == nil {
			continue
		}
		if r := subrequestRank(claim, alloc); best == nil || r < bestRank {
			best, bestRank, p.Node = alloc, r, n.Name
		}
	}
	if best == nil {
		return p, nil
	}
	c.Record(claim, best)
	describe(&p, claim, best, idx)
	return p, nil
}

// describe fills in p from the claim's allocation: devices, classes, tiers,
// cost and size.
func describe(p *Placement, claim *resourceapi.ResourceClaim, alloc *resourceapi.AllocationResult, idx map[slices.DeviceKey]slices.Published) {
	for _, r := range alloc.Devices.Results {
		d := idx[slices.DeviceKey{Pool: r.Pool, Device: r.Device}]
		p.Devices = append(p.Devices, r.Device)
		p.Classes = appendNew(p.Classes, requestClass(claim, r.Request))
		p.Tiers = appendNew(p.Tiers, d.Tier)
		p.Cost += d.Cost(r.ConsumedCapacity)
		p.GPUs += float64(d.MilliGPUs(r.ConsumedCapacity)) / slices.ComputeUnitsPerGPU
	}
}

// Observe describes a live cluster as Run describes a plan: published are
// the ResourceSlices the nodes' plugins published, claims the claims as the
// scheduler allocated them (unallocated ones get no node). A node's GPUs
// are the physical GPUs its slices publish.
func Observe(nodes []string, published []*resourceapi.ResourceSlice, claims []*resourceapi.ResourceClaim) *Result {
	idx := slices.Index(published)
	res := &Result{Devices: len(idx)}
	gpus := map[slices.DeviceKey]bool{}
	for _, d := range idx {
		gpus[d.GPU] = true
	}
	for _, n := range nodes {
		y := NodeYield{Node: n}
		for gpu := range gpus {
			if gpu.Pool == n {
				y.GPUs++
			}
		}
		res.Nodes = append(res.Nodes, y)
	}
	for _, claim := range claims {
		p := Placement{Claim: claim.Namespace + "/" + claim.Name}
		if alloc := claim.Status.Allocation; alloc != nil && len(alloc.Devices.Results) > 0 {
			p.Node = alloc.Devices.Results[0].Pool
			describe(&p, claim, alloc, idx)
		}
		res.add(p)
	}
	return res
}

// subrequestRank sums, over the claim's firstAvailable requests, the index
// of the subrequest the allocation used: lower is better.
func subrequestRank(claim *resourceapi.ResourceClaim, alloc *resourceapi.AllocationResult) int {
	rank := 0
	for _, r := range alloc.Devices.Results {
		for _, req := range claim.Spec.Devices.Requests {
			for i, sub := range req.FirstAvailable {
				if req.Name+"/"+sub.Name == r.Request {
					rank += i
				}
			}
		}
	}
	return rank
}

// requestClass finds the DeviceClass of a result's request, which is
// "<request>" or "<request>/<subrequest>" for firstAvailable.
func requestClass(claim *resourceapi.ResourceClaim, request string) string {
	for _, r := range claim.Spec.Devices.Requests {
		if r.Exactly != nil && r.Name == request {
			return r.Exactly.DeviceClassName
		}
		for _, sub := range r.FirstAvailable {
			if r.Name+"/"+sub.Name == request {
				return sub.DeviceClassName
			}
		}
	}
	return ""
}

func appendNew(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}
