package sim

import (
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// SlicesPublisher publishes a node's GPUs exactly as the kubelet plugin
// does, through pkg/slices.
func SlicesPublisher(name string, labels map[string]string, m inventory.Machine, policy *v1alpha1.TierPolicy) (resourceslice.DriverResources, error) {
	return slices.Build(slices.Node{Name: name, Labels: labels, Machine: m}, policy)
}
