// Package allocator holds what Tierra needs to run the Kubernetes
// scheduler's own DRA allocator (k8s.io/dynamic-resource-allocation/structured)
// outside the scheduler: the feature set kube-scheduler passes, a DeviceClass
// lister over plain objects, and the CEL cache settings. The simulator, the
// demo and the allocator conformance tests all use it, so they all run the
// allocator exactly as the scheduler would.
package allocator

import (
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured"
)

// SchedulerFeatures is the allocator feature set kube-scheduler 1.37.1
// passes by default: AllocatorFeatures() of its dynamicresources plugin over
// the gates on by default in k8s.io/kubernetes/pkg/features (AdminAccess,
// DeviceTaints and ResourceClaimDeviceStatus GA; PrioritizedList,
// PartitionableDevices, ConsumableCapacity, DeviceBindingConditions and
// FractionalCapacityRange beta and on). DerivedAttributes,
// CompatibilityGroups, OptionalNodeOperations and ListTypeAttributes are
// alpha and off, so this selects the "incubating" allocator.
var SchedulerFeatures = structured.Features{
	AdminAccess:             true,
	ConsumableCapacity:      true,
	DeviceBindingAndStatus:  true,
	DeviceTaints:            true,
	FractionalCapacityRange: true,
	PartitionableDevices:    true,
	PrioritizedList:         true,
}

// AlphaFeatures adds the alpha allocator features (OptionalNodeOperations,
// DerivedAttributes, CompatibilityGroups, ListTypeAttributes): a scheduler
// with those gates on runs the "experimental" allocator. Conformance runs
// against both.
var AlphaFeatures = func() structured.Features {
	f := SchedulerFeatures
	f.OptionalNodeOperations = true
	f.DerivedAttributes = true
	f.CompatibilityGroups = true
	f.ListTypeAttributes = true
	return f
}()

// NewCELCache returns a CEL cache configured for the features, sized for
// maxExpressions compiled selectors.
func NewCELCache(maxExpressions int, f structured.Features) *cel.Cache {
	return cel.NewCache(maxExpressions, cel.Features{EnableConsumableCapacity: f.ConsumableCapacity})
}

// ClassLister serves DeviceClasses from a map; it implements
// structured.DeviceClassLister.
type ClassLister map[string]*resourceapi.DeviceClass

var _ structured.DeviceClassLister = ClassLister(nil)

// NewClassLister indexes classes by name.
func NewClassLister(classes ...*resourceapi.DeviceClass) ClassLister {
	l := ClassLister{}
	for _, c := range classes {
		l[c.Name] = c
	}
	return l
}

// List returns all classes.
func (l ClassLister) List() ([]*resourceapi.DeviceClass, error) {
	out := make([]*resourceapi.DeviceClass, 0, len(l))
	for _, c := range l {
		out = append(out, c)
	}
	return out, nil
}

// Get returns one class.
func (l ClassLister) Get(name string) (*resourceapi.DeviceClass, error) {
	c, ok := l[name]
	if !ok {
		return nil, fmt.Errorf("device class %q not found", name)
	}
	return c, nil
}
