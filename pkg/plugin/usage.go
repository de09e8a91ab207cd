package plugin

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/cost"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

// usageInput is what per-pod GPU use is wired from.
type usageInput struct {
	cfg     Config
	reg     *prometheus.Registry
	gpus    nvgpu.Interface
	client  kubernetes.Interface
	clock   clock.Clock
	policy  *v1alpha1.TierPolicy
	node    *corev1.Node
	machine inventory.Machine
}

// startUsage exports per-pod GPU use and the idle and oversized claims,
// and runs the usage monitor that posts their events on the pods until
// Stop. It needs the metrics on (in.reg), a proc root (Config.ProcRoot)
// and a machine that reads per-process use (nvgpu.ProcessUseReader);
// without one of them it does nothing.
func (d *Driver) startUsage(ctx context.Context, in usageInput) error {
	logger := klog.FromContext(ctx)
	procs, ok := in.gpus.(nvgpu.ProcessUseReader)
	switch {
	case in.reg == nil || in.cfg.ProcRoot == "":
		return nil
	case !ok:
		logger.Info("No per-pod GPU use: the machine does not read per-process use")
		return nil
	}
	tracker, err := usage.NewTracker(usage.TrackerOptions{Clock: in.clock, IdleThreshold: in.cfg.IdleThreshold,
		IdleWindow: in.cfg.IdleWindow, Sizes: migSizes(in.policy, in.node, in.machine)})
	if err != nil {
		return fmt.Errorf("usage tracker: %w", err)
	}
	claims := usageClaims{d: d, machine: in.machine}
	pods := podproc.Mapper{ProcRoot: in.cfg.ProcRoot}
	collector, err := metrics.NewUsageCollector(metrics.UsageOptions{Processes: procs, Claims: claims, Pods: pods,
		Clock: in.clock, Logger: logger})
	if err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{collector, metrics.NewIdleCollector(tracker)} {
		if err := in.reg.Register(c); err != nil {
			return fmt.Errorf("register the per-pod GPU use metrics: %w", err)
		}
	}
	monitor, err := usage.NewMonitor(usage.MonitorOptions{Processes: procs, Pods: pods, Claims: claims, Tracker: tracker,
		Events: usage.APIEvents{Client: in.client, Node: in.cfg.NodeName}, Interval: in.cfg.UsageInterval})
	if err != nil {
		return err
	}
	d.wg.Go(func() { monitor.Run(ctx) })
	logger.Info("Per-pod GPU use on", "procRoot", in.cfg.ProcRoot, "idleThreshold", in.cfg.IdleThreshold,
		"idleWindow", in.cfg.IdleWindow)
	return nil
}

// usageClaims lists the prepared claims from the checkpoint, with their
// pods, the tier and the cost of their published devices.
type usageClaims struct {
	d *Driver
	// machine sizes the claims' devices: the GPUs as discovered at start
	// (products and MIG profiles do not change while the plugin runs).
	machine inventory.Machine
}

var _ usage.ClaimLister = usageClaims{}

// PreparedClaims implements usage.ClaimLister. A claim's cost is the sum of
// cost.Price.Allocation over its devices: whole and MIG devices pay their
// costPerHour; a share of a shared GPU pays its consumed compute, which the
// checkpoint does not record, so it adds 0.
func (u usageClaims) PreparedClaims() []usage.Claim {
	published := u.d.pub.devices()
	var out []usage.Claim
	for _, rec := range u.d.prep.Records() {
		if rec.Phase != checkpoint.PhasePrepared {
			continue
		}
		c := usage.ClaimFromCheckpoint(rec, u.machine)
		if len(c.Devices) == 0 {
			continue // admin access only: holds no GPU
		}
		for _, p := range rec.Pods {
			c.Pods = append(c.Pods, usage.Pod{UID: p.UID, Name: p.Name})
		}
		seen := map[[2]string]bool{}
		for _, dev := range rec.Devices {
			key := [2]string{dev.Pool, dev.Device}
			if dev.AdminAccess || seen[key] {
				continue
			}
			seen[key] = true
			pd := published[key]
			if c.Tier == "" {
				c.Tier = pd.tier
			}
			c.CostPerHour += pd.price.Allocation(0).Dollars()
		}
		out = append(out, c)
	}
	return out
}

// migSizes are the smaller devices a claim on this node could move to:
// the MIG profiles of each MIG-capable GPU product here, in every MIG tier
// of the policy that selects it, priced as pkg/slices publishes them. A GPU
// the price book has no price for offers none.
func migSizes(policy *v1alpha1.TierPolicy, node *corev1.Node, machine inventory.Machine) []usage.Size {
	if policy == nil {
		return nil
	}
	nodeLabels := labels.Set(node.Labels)
	var out []usage.Size
	seen := map[[2]string]bool{} // tier, product
	for _, gpu := range machine.GPUs {
		if gpu.MIG == nil {
			continue
		}
		price, err := cost.PerGPUHour(policy.Spec.PriceBook, gpu.ProductName, nodeLabels)
		if err != nil {
			continue
		}
		for _, tier := range policy.Spec.Tiers {
			key := [2]string{tier.Name, gpu.ProductName}
			if tier.Partitioning != v1alpha1.PartitioningMIG || seen[key] {
				continue
			}
			if ok, err := tier.GPUs.Matches(gpu.ProductName, gpu.MemoryBytes, nodeLabels); err != nil || !ok {
				continue
			}
			seen[key] = true
			out = append(out, usage.MIGSizes(gpu, tier.Name, price)...)
		}
	}
	return out
}
