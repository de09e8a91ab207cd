package tierratest

import (
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/pkg/allocator"
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

// Cluster is the allocator package's in-memory cluster.
type Cluster = allocator.Cluster

// NewCluster returns a cluster with the scheduler's feature set.
func NewCluster(slices []*resourceapi.ResourceSlice, classes ...*resourceapi.DeviceClass) *Cluster {
	return allocator.NewCluster(slices, classes...)
}
