package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ControllerSnapshot is what tierra-controller's metrics report, computed
// from its informer caches when Prometheus scrapes (pkg/controller).
type ControllerSnapshot struct {
	// Tiers are the tiers of the policy and those devices are published for.
	Tiers []TierSample
	// Nodes are one tier's devices on one node.
	Nodes []TierNodeSample
	// Pending counts the unallocated claims of one tier and namespace.
	Pending []PendingSample
	// Costs are the allocated devices' price per hour by tenant,
	// namespace and tier.
	Costs []CostSample
}

// TierSample is one tier over all nodes.
type TierSample struct {
	Tier string
	// YieldRatio is allocated GPU-equivalents over published GPUs (0 when
	// the tier publishes none).
	YieldRatio float64
	// OldestPendingSeconds is the age of the tier's oldest unallocated
	// claim, 0 when none waits.
	OldestPendingSeconds float64
}

// TierNodeSample is one tier's GPUs on one node.
type TierNodeSample struct {
	Tier, Node string
	// GPUs are the physical GPUs the node publishes for the tier;
	// AllocatedGPUs the GPU-equivalents claims hold of them.
	GPUs, AllocatedGPUs float64
	// StrandedGPUs is the expected idle GPU share the tier's typical
	// claims cannot use (FGD's fragmentation); only when HasStranded (the
	// node has untainted devices of the tier).
	StrandedGPUs float64
	HasStranded  bool
}

// PendingSample counts one tier and namespace's unallocated claims.
type PendingSample struct {
	Tier, Namespace string
	Claims          int
}

// CostSample is the price per hour of what one tenant's namespace holds
// in one tier.
type CostSample struct {
	Tenant, Namespace, Tier string
	DollarsPerHour          float64
}

// ControllerState is implemented by the controller: a snapshot computed
// from its caches at the time of the call.
type ControllerState interface {
	ControllerMetrics() (ControllerSnapshot, error)
}

var (
	tierGPUsDesc = prometheus.NewDesc(Namespace+"_tier_gpus",
		"Physical GPUs the node publishes for the tier.", []string{"tier", "node"}, nil)
	tierAllocatedDesc = prometheus.NewDesc(Namespace+"_tier_allocated_gpus",
		"GPU-equivalents allocated to claims on the tier's GPUs of the node (whole GPU 1, MIG slice its memory slices over the GPU's, share its compute).",
		[]string{"tier", "node"}, nil)
	tierStrandedDesc = prometheus.NewDesc(Namespace+"_tier_stranded_gpus",
		"Idle GPU share of the tier on the node that the tier's typical claims cannot use (FGD's expected fragmentation, as tierra sim computes it; MIG GPUs by free memory slices no possible placement covers).",
		[]string{"tier", "node"}, nil)
	tierYieldDesc = prometheus.NewDesc(Namespace+"_tier_yield_ratio",
		"Allocated GPU-equivalents over published GPUs of the tier.", []string{"tier"}, nil)
	pendingDesc = prometheus.NewDesc(Namespace+"_pending_claims",
		"Unallocated ResourceClaims asking for the tier's class (tier \"\": gpu.tierra.dev or mig.gpu.tierra.dev, any tier).",
		[]string{"tier", "namespace"}, nil)
	pendingAgeDesc = prometheus.NewDesc(Namespace+"_pending_claim_age_seconds",
		"Age of the tier's oldest unallocated ResourceClaim; 0 when none waits.", []string{"tier"}, nil)
	costDesc = prometheus.NewDesc(Namespace+"_allocated_cost_dollars_per_hour",
		"Price per hour of the devices allocated to the namespace's claims in the tier (costPerHour; a share pays its compute times costPerComputeUnitHour); tenant \"\" is the open tenant.",
		[]string{"tenant", "namespace", "tier"}, nil)
	controllerDescs = []*prometheus.Desc{tierGPUsDesc, tierAllocatedDesc, tierStrandedDesc, tierYieldDesc, pendingDesc, pendingAgeDesc, costDesc}
)

// ControllerCollector reports a ControllerState at each scrape: it keeps no
// state of its own.
type ControllerCollector struct {
	state ControllerState
}

var _ prometheus.Collector = (*ControllerCollector)(nil)

// NewControllerCollector collects state's snapshot at each scrape.
func NewControllerCollector(state ControllerState) *ControllerCollector {
	return &ControllerCollector{state: state}
}

// Describe implements prometheus.Collector.
func (c *ControllerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range controllerDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A snapshot that fails fails the
// scrape (the error is reported against tierra_tier_gpus).
func (c *ControllerCollector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.state.ControllerMetrics()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(tierGPUsDesc, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range snap.Tiers {
		gauge(tierYieldDesc, t.YieldRatio, t.Tier)
		gauge(pendingAgeDesc, t.OldestPendingSeconds, t.Tier)
	}
	for _, n := range snap.Nodes {
		gauge(tierGPUsDesc, n.GPUs, n.Tier, n.Node)
		gauge(tierAllocatedDesc, n.AllocatedGPUs, n.Tier, n.Node)
		if n.HasStranded {
			gauge(tierStrandedDesc, n.StrandedGPUs, n.Tier, n.Node)
		}
	}
	for _, p := range snap.Pending {
		gauge(pendingDesc, float64(p.Claims), p.Tier, p.Namespace)
	}
	for _, cs := range snap.Costs {
		gauge(costDesc, cs.DollarsPerHour, cs.Tenant, cs.Namespace, cs.Tier)
	}
}
