package testing

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/cel"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"k8s.io/dynamic-resource-allocation/structured"
)

// SchedulerFeatures and AlphaFeatures re-export the allocator package's
// feature sets for tests.
var (
	SchedulerFeatures = allocator.SchedulerFeatures
	AlphaFeatures     = allocator.AlphaFeatures
)

// ClassLister serves DeviceClasses from a map.
type ClassLister = allocator.ClassLister

// NewClassLister indexes classes by name.
func NewClassLister(classes ...*resourceapi.DeviceClass) ClassLister {
	return allocator.NewClassLister(classes...)
}

// Cluster is published slices, classes and the claims allocated so far, fed
// to the scheduler's allocator one claim at a time, as kube-scheduler does.
type Cluster struct {
	Features structured.Features
	Slices   []*resourceapi.ResourceSlice
	Classes  ClassLister
	CEL      *cel.Cache
	// Allocated holds the allocation results so far.
	Allocated []*resourceapi.ResourceClaim
}

// NewCluster returns a cluster with the scheduler's feature set.
func NewCluster(slices []*resourceapi.ResourceSlice, classes ...*resourceapi.DeviceClass) *Cluster {
	return &Cluster{Features: SchedulerFeatures, Slices: slices, Classes: NewClassLister(classes...), CEL: allocator.NewCELCache(100, SchedulerFeatures)}
}

// State is the AllocatedState the allocator needs for the claims so far.
func (c *Cluster) State() structured.AllocatedState {
	st := structured.AllocatedState{
		AllocatedDevices:         sets.New[structured.DeviceID](),
		AllocatedSharedDeviceIDs: sets.New[structured.SharedDeviceID](),
		AggregatedCapacity:       structured.NewConsumedCapacityCollection(),
	}
	for _, claim := range c.Allocated {
		for _, r := range claim.Status.Allocation.Devices.Results {
			id := structured.MakeDeviceID(r.Driver, r.Pool, r.Device)
			if r.ShareID == nil {
				st.AllocatedDevices.Insert(id)
				continue
			}
			st.AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(id, r.ShareID))
			st.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, r.ConsumedCapacity))
		}
	}
	return st
}

// Allocate allocates one claim on the node. It returns the devices chosen
// (nil when the claim does not fit) and records the claim as allocated.
func (c *Cluster) Allocate(ctx context.Context, node string, claim *resourceapi.ResourceClaim) ([]string, error) {
	a, err := structured.NewAllocator(ctx, c.Features, c.State(), c.Classes, c.Slices, c.CEL)
	if err != nil {
		return nil, fmt.Errorf("new allocator: %w", err)
	}
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	results, err := a.Allocate(ctx, n, []*resourceapi.ResourceClaim{claim})
	if err != nil || len(results) == 0 {
		return nil, err
	}
	claim = claim.DeepCopy()
	claim.Status.Allocation = &results[0]
	c.Allocated = append(c.Allocated, claim)
	var devices []string
	for _, r := range results[0].Devices.Results {
		devices = append(devices, r.Device)
	}
	return devices, nil
}
