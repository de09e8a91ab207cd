package plugin

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// publisher builds the node's ResourceSlices from the hardware, the node's
// labels and the TierPolicy, and republishes them when one of those
// changes. The Preparer plans against what was last published.
type publisher struct {
	nodeName string
	gpus     nvgpu.Discoverer
	// prep and helper are set once the plugin serves; until then build
	// only builds.
	prep   *prepare.Preparer
	helper *kubeletplugin.Helper

	mu     sync.Mutex
	labels map[string]string
	policy *v1alpha1.TierPolicy
}

// build discovers the hardware and computes the node's resources and the
// inventory prepare plans against.
func (p *publisher) build(ctx context.Context) (resourceslice.DriverResources, *prepare.Inventory, inventory.Machine, error) {
	machine, err := p.gpus.Machine(ctx)
	if err != nil {
		return resourceslice.DriverResources{}, nil, inventory.Machine{}, fmt.Errorf("discover GPUs: %w", err)
	}
	resources, err := slices.Build(slices.Node{Name: p.nodeName, Labels: p.labels, Machine: machine}, p.policy)
	if err != nil {
		return resourceslice.DriverResources{}, nil, inventory.Machine{}, fmt.Errorf("build ResourceSlices: %w", err)
	}
	inv, err := prepare.NewInventory(v1alpha1.DriverName, p.nodeName, resources, machine)
	if err != nil {
		return resourceslice.DriverResources{}, nil, inventory.Machine{}, err
	}
	return resources, inv, machine, nil
}

// setLabels republishes when the node's labels changed.
func (p *publisher) setLabels(ctx context.Context, labels map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if maps.Equal(p.labels, labels) {
		return
	}
	p.labels = labels
	p.republish(ctx, "node labels changed")
}

// setPolicy republishes when the TierPolicy's spec changed.
func (p *publisher) setPolicy(ctx context.Context, policy *v1alpha1.TierPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if equality.Semantic.DeepEqual(p.policy.Spec, policy.Spec) {
		return
	}
	p.policy = policy
	p.republish(ctx, "TierPolicy changed")
}

// hardwareChanged republishes after a hardware event.
func (p *publisher) hardwareChanged(ctx context.Context, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.republish(ctx, why)
}

// republish rebuilds and publishes; the caller holds mu. A failure is
// logged: the last published slices stay, and the next change retries.
func (p *publisher) republish(ctx context.Context, why string) {
	logger := klog.FromContext(ctx)
	resources, inv, _, err := p.build(ctx)
	if err == nil {
		p.prep.SetInventory(inv, p.policy)
		err = p.helper.PublishResources(ctx, resources)
	}
	if err != nil {
		logger.Error(err, "Republishing ResourceSlices failed", "reason", why)
		return
	}
	logger.Info("Republished ResourceSlices", "reason", why, "tierPolicy", p.policy.Name)
}
