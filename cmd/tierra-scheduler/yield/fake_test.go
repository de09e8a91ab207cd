package yield

import (
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/structured"
	fwk "k8s.io/kube-scheduler/framework"
)

// fakeDRA is the part of the framework's SharedDRAManager the plugin uses,
// over fixed objects.
type fakeDRA struct {
	slices  []*resourceapi.ResourceSlice
	classes map[string]*resourceapi.DeviceClass
	claims  map[string]*resourceapi.ResourceClaim
	alloc   *structured.AllocatedState
	pending map[types.UID]*resourceapi.AllocationResult
}

var _ fwk.SharedDRAManager = (*fakeDRA)(nil)

func (f *fakeDRA) ResourceClaims() fwk.ResourceClaimTracker     { return claimTracker{f: f} }
func (f *fakeDRA) ResourceSlices() fwk.ResourceSliceLister      { return sliceLister{f} }
func (f *fakeDRA) DeviceClasses() fwk.DeviceClassLister         { return classLister{f} }
func (f *fakeDRA) DeviceClassResolver() fwk.DeviceClassResolver { return nil }

type sliceLister struct{ f *fakeDRA }

func (l sliceLister) ListWithDeviceTaintRules() ([]*resourceapi.ResourceSlice, error) {
	return l.f.slices, nil
}

type classLister struct{ f *fakeDRA }

func (l classLister) List() ([]*resourceapi.DeviceClass, error) {
	var out []*resourceapi.DeviceClass
	for _, c := range l.f.classes {
		out = append(out, c)
	}
	return out, nil
}

func (l classLister) Get(name string) (*resourceapi.DeviceClass, error) {
	if c, ok := l.f.classes[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(resourceapi.Resource("deviceclasses"), name)
}

// claimTracker serves Get and the allocated state; the plugin calls
// nothing else (the embedded nil interface panics if it did).
type claimTracker struct {
	fwk.ResourceClaimTracker
	f *fakeDRA
}

func (t claimTracker) Get(namespace, name string) (*resourceapi.ResourceClaim, error) {
	if c, ok := t.f.claims[namespace+"/"+name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(resourceapi.Resource("resourceclaims"), name)
}

// GatherAllocatedState copies the state, as the scheduler's tracker does on
// every call.
func (t claimTracker) GatherAllocatedState() (*structured.AllocatedState, error) {
	return &structured.AllocatedState{
		AllocatedDevices:         t.f.alloc.AllocatedDevices.Clone(),
		AllocatedSharedDeviceIDs: t.f.alloc.AllocatedSharedDeviceIDs.Clone(),
		AggregatedCapacity:       t.f.alloc.AggregatedCapacity.Clone(),
	}, nil
}

func (t claimTracker) GetPendingAllocation(uid types.UID) *resourceapi.AllocationResult {
	return t.f.pending[uid]
}

func (t claimTracker) ListAllAllocatedDevices() (sets.Set[structured.DeviceID], error) {
	return t.f.alloc.AllocatedDevices, nil
}
