package plugin

import (
	"context"
	"fmt"
	"maps"
	gslices "slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// publisher builds the node's ResourceSlices from the hardware, the node's
// labels and the TierPolicy, and republishes them when one of those
// changes. The Preparer plans against what was last published.
//
// A GPU whose live claims hold a shape the new build no longer publishes
// (re-tiering: a time-sliced slot, now a whole GPU) is reshaping: all its
// devices carry the NoSchedule reshaping taint, so the scheduler places
// nothing new on it, until the last such claim is unprepared; then the
// plugin republishes it untainted. The old shape is not kept: after a
// restart it cannot be rebuilt, while the claims' records are on disk.
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
	// built is the last shape published, before tainting; reshaping the
	// GPUs tainted in it, with the held devices it no longer publishes.
	built     resourceslice.DriverResources
	reshaping map[string][]slices.Held
	// anyReshaping is len(reshaping) > 0, read without mu after every
	// unprepare.
	anyReshaping atomic.Bool
	// health taints the devices of faulty GPUs (health.go); nil until the
	// GPU events are watched.
	health *health.Tracker
	// metrics counts republishes; published indexes the devices last
	// published, for the metrics' mode and tier labels.
	metrics   *metrics.Plugin
	published atomic.Pointer[map[[2]string]publishedDevice]
	// disabled are the apiserver features found off (fields it dropped);
	// the devices that need them are withdrawn, withdrawn of them at the
	// last publish (handleerror.go). warn records a Warning Event on the
	// node.
	disabled  sets.Set[string]
	withdrawn int
	warn      func(ctx context.Context, reason, message string)
}

// build discovers the hardware and computes the node's resources and the
// inventory prepare plans against.
func (p *publisher) build(ctx context.Context) (resourceslice.DriverResources, *prepare.NodePool, inventory.Machine, error) {
	machine, err := p.gpus.Machine(ctx)
	if err != nil {
		return resourceslice.DriverResources{}, nil, inventory.Machine{}, fmt.Errorf("discover GPUs: %w", err)
	}
	resources, err := slices.Build(slices.Node{Name: p.nodeName, Labels: p.labels, Machine: machine}, p.policy)
	if err != nil {
		return resourceslice.DriverResources{}, nil, inventory.Machine{}, fmt.Errorf("build ResourceSlices: %w", err)
	}
	inv, err := prepare.NewNodePool(v1alpha1.DriverName, p.nodeName, resources, machine)
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
	p.republish(ctx, metrics.CauseNodeLabels, "node labels changed")
}

// setPolicy republishes when the TierPolicy's spec changed.
func (p *publisher) setPolicy(ctx context.Context, policy *v1alpha1.TierPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if equality.Semantic.DeepEqual(p.policy.Spec, policy.Spec) {
		return
	}
	p.policy = policy
	if p.health != nil {
		p.health.SetPolicy(policy.Spec.Health)
	}
	p.republish(ctx, metrics.CausePolicy, "TierPolicy changed")
}

// hardwareChanged republishes after a hardware or health event; cause is
// metrics.CauseHardware or CauseHealth.
func (p *publisher) hardwareChanged(ctx context.Context, cause, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.republish(ctx, cause, why)
}

// republish rebuilds and publishes; the caller holds mu. A failure is
// logged: the last published slices stay, and the next change retries.
// cause (metrics.Cause…) labels the republish count.
func (p *publisher) republish(ctx context.Context, cause, why string) {
	logger := klog.FromContext(ctx)
	resources, inv, _, err := p.build(ctx)
	if err == nil {
		p.prep.SetNodePool(inv, p.policy)
		err = p.helper.PublishResources(ctx, p.taint(ctx, resources))
	}
	if err != nil {
		logger.Error(err, "Republishing ResourceSlices failed", "reason", why)
		return
	}
	p.metrics.Republished(cause)
	logger.Info("Republished ResourceSlices", "reason", why, "tierPolicy", p.policy.Name)
}

// tainted is taint for the first publish, before the plugin serves.
func (p *publisher) tainted(ctx context.Context, resources resourceslice.DriverResources) resourceslice.DriverResources {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taint(ctx, resources)
}

// taint keeps resources as the published shape and returns them with the
// reshaping taint on every GPU whose live claims hold a shape they do not
// publish; it logs each GPU that starts or stops reshaping. The caller
// holds mu.
func (p *publisher) taint(ctx context.Context, resources resourceslice.DriverResources) resourceslice.DriverResources {
	reshaping := slices.Reshaping(resources, p.prep.HeldDevices())
	logReshaping(ctx, p.reshaping, reshaping)
	p.built, p.reshaping = resources, reshaping
	if p.metrics != nil {
		published := indexDevices(resources)
		p.published.Store(&published)
	}
	p.anyReshaping.Store(len(reshaping) > 0)
	return p.withdraw(p.healthTaints(slices.Taint(resources, sets.KeySet(reshaping), slices.ReshapingTaint())))
}

// serving hands the publisher the helper it republishes through, once the
// plugin serves; a claim unprepared before then may have ended a GPU's
// reshaping.
func (p *publisher) serving(ctx context.Context, helper *kubeletplugin.Helper) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.helper = helper
	p.recheck(ctx)
}

// claimsEnded is called after claims were unprepared. It republishes only
// when that ends (or changes) a GPU's reshaping, and costs nothing while no
// GPU is reshaping.
func (p *publisher) claimsEnded(ctx context.Context) {
	if !p.anyReshaping.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recheck(ctx)
}

// recheck republishes when the set of reshaping GPUs of the published shape
// changed since it was published. The caller holds mu.
func (p *publisher) recheck(ctx context.Context) {
	if p.helper == nil || len(p.reshaping) == 0 {
		return
	}
	now := slices.Reshaping(p.built, p.prep.HeldDevices())
	if sets.KeySet(now).Equal(sets.KeySet(p.reshaping)) {
		return
	}
	p.republish(ctx, metrics.CauseReshaping, "claims on a reshaping GPU ended")
}

// devices are the devices last published (nil before the first publish or
// without metrics).
func (p *publisher) devices() map[[2]string]publishedDevice {
	if m := p.published.Load(); m != nil {
		return *m
	}
	return nil
}

// publishedGPUs are the UUIDs of the GPUs last published, sorted.
func (p *publisher) publishedGPUs() []string {
	seen := map[string]bool{}
	var out []string
	for _, dev := range p.devices() {
		if dev.gpu != "" && !seen[dev.gpu] {
			seen[dev.gpu] = true
			out = append(out, dev.gpu)
		}
	}
	gslices.Sort(out)
	return out
}

func logReshaping(ctx context.Context, before, after map[string][]slices.Held) {
	logger := klog.FromContext(ctx)
	for uuid, gone := range after {
		if _, ok := before[uuid]; !ok {
			logger.Info("GPU reshaping: its devices are tainted until the claims on its previous shape end",
				"gpu", uuid, "taint", slices.ReshapingTaintKey, "held", describeHeld(gone))
		}
	}
	for uuid := range before {
		if _, ok := after[uuid]; !ok {
			logger.Info("GPU no longer reshaping: its devices are published untainted", "gpu", uuid)
		}
	}
}

// describeHeld says which claim holds which device that is gone, and how.
func describeHeld(held []slices.Held) []string {
	out := make([]string, 0, len(held))
	for _, h := range held {
		how := string(h.Mode)
		if h.Strategy != "" {
			how += ", " + h.Strategy
		}
		out = append(out, fmt.Sprintf("claim %s holds %s (%s)", h.Claim, h.Device, how))
	}
	return out
}
