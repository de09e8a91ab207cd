package allocator

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured"
)

// Cluster is published slices, classes and the claims allocated so far, fed
// to the scheduler's allocator one claim at a time, as kube-scheduler does.
type Cluster struct {
	Features structured.Features
	Slices   []*resourceapi.ResourceSlice
	Classes  ClassLister
	CEL      *cel.Cache
	// Allocated holds the allocation results so far.
	Allocated []*resourceapi.ResourceClaim

	// state is the AllocatedState of Allocated[:folded]; State folds in the
	// rest, so each allocation costs its own results, not all of history.
	// The allocator only reads it.
	state  structured.AllocatedState
	folded int
}

// NewCluster returns a cluster with the scheduler's feature set.
func NewCluster(slices []*resourceapi.ResourceSlice, classes ...*resourceapi.DeviceClass) *Cluster {
	return &Cluster{Features: SchedulerFeatures, Slices: slices, Classes: NewClassLister(classes...), CEL: NewCELCache(100, SchedulerFeatures)}
}

// State is the AllocatedState the allocator needs for the claims so far.
// The allocator only reads it; it stays valid until the next Record.
func (c *Cluster) State() structured.AllocatedState {
	if c.state.AllocatedDevices == nil {
		c.state = structured.AllocatedState{
			AllocatedDevices:         sets.New[structured.DeviceID](),
			AllocatedSharedDeviceIDs: sets.New[structured.SharedDeviceID](),
			AggregatedCapacity:       structured.NewConsumedCapacityCollection(),
		}
	}
	for ; c.folded < len(c.Allocated); c.folded++ {
		for _, r := range c.Allocated[c.folded].Status.Allocation.Devices.Results {
			// As kube-scheduler's allocated-device tracker does: an
			// admin-access result (a monitor) does not hold the device.
			if r.AdminAccess != nil && *r.AdminAccess {
				continue
			}
			id := structured.MakeDeviceID(r.Driver, r.Pool, r.Device)
			if r.ShareID == nil {
				c.state.AllocatedDevices.Insert(id)
				continue
			}
			c.state.AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(id, r.ShareID))
			c.state.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, r.ConsumedCapacity))
		}
	}
	return c.state
}

// Allocate allocates one claim on the node. It returns the devices chosen
// (nil when the claim does not fit) and records the claim as allocated.
func (c *Cluster) Allocate(ctx context.Context, node string, claim *resourceapi.ResourceClaim) ([]string, error) {
	result, err := c.AllocateResult(ctx, node, claim)
	if result == nil || err != nil {
		return nil, err
	}
	var devices []string
	for _, r := range result.Devices.Results {
		devices = append(devices, r.Device)
	}
	return devices, nil
}

// AllocateResult allocates one claim on the node as kube-scheduler's
// DynamicResources plugin would, records it, and returns the allocation;
// nil without error when the claim does not fit on the node.
func (c *Cluster) AllocateResult(ctx context.Context, node string, claim *resourceapi.ResourceClaim) (*resourceapi.AllocationResult, error) {
	result, err := c.Try(ctx, node, claim)
	if result != nil {
		c.Record(claim, result)
	}
	return result, err
}

// Try computes the claim's allocation on the node without recording it;
// nil without error when the claim does not fit.
func (c *Cluster) Try(ctx context.Context, node string, claim *resourceapi.ResourceClaim) (*resourceapi.AllocationResult, error) {
	a, err := structured.NewAllocator(ctx, c.Features, c.State(), c.Classes, c.Slices, c.CEL)
	if err != nil {
		return nil, fmt.Errorf("new allocator: %w", err)
	}
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	results, err := a.Allocate(ctx, n, []*resourceapi.ResourceClaim{claim})
	if err != nil {
		return nil, fmt.Errorf("allocate claim %s/%s on node %s: %w", claim.Namespace, claim.Name, node, err)
	}
	if len(results) == 0 {
		return nil, nil
	}
	return &results[0], nil
}

// Record marks the claim as allocated with the result.
func (c *Cluster) Record(claim *resourceapi.ResourceClaim, result *resourceapi.AllocationResult) {
	claim = claim.DeepCopy()
	claim.Status.Allocation = result
	c.Allocated = append(c.Allocated, claim)
}
