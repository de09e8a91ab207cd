package metrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeControllerState struct {
	snap ControllerSnapshot
	err  error
	// calls counts snapshots taken: one per scrape, none cached.
	calls int
}

func (f *fakeControllerState) ControllerMetrics() (ControllerSnapshot, error) {
	f.calls++
	return f.snap, f.err
}

func TestControllerCollectorReportsTheSnapshot(t *testing.T) {
	state := &fakeControllerState{snap: ControllerSnapshot{
		Tiers: []TierSample{{Tier: "training", YieldRatio: 0.5, OldestPendingSeconds: 90}, {Tier: "dev", YieldRatio: 0.1875}},
		Nodes: []TierNodeSample{
			{Tier: "training", Node: "n1", GPUs: 2, AllocatedGPUs: 1, StrandedGPUs: 0.5, HasStranded: true},
			{Tier: "inference", Node: "n2", GPUs: 8, AllocatedGPUs: 0.625},
		},
		Pending: []PendingSample{{Tier: "training", Namespace: "lab", Claims: 3}},
		Costs:   []CostSample{{Tenant: "research", Namespace: "lab", Tier: "training", DollarsPerHour: 3.5}, {Namespace: "web", Tier: "dev", DollarsPerHour: 0.6}},
	}}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(NewControllerCollector(state)))
	want := `
# HELP tierra_tier_gpus Physical GPUs the node publishes for the tier.
# TYPE tierra_tier_gpus gauge
tierra_tier_gpus{node="n1",tier="training"} 2
tierra_tier_gpus{node="n2",tier="inference"} 8
# HELP tierra_tier_stranded_gpus Idle GPU share of the tier on the node that the tier's typical claims cannot use (FGD's expected fragmentation, as tierra sim computes it; MIG GPUs by free memory slices no possible placement covers).
# TYPE tierra_tier_stranded_gpus gauge
tierra_tier_stranded_gpus{node="n1",tier="training"} 0.5
# HELP tierra_pending_claims Unallocated ResourceClaims asking for the tier's class (tier "": gpu.tierra.dev or mig.gpu.tierra.dev, any tier).
# TYPE tierra_pending_claims gauge
tierra_pending_claims{namespace="lab",tier="training"} 3
# HELP tierra_pending_claim_age_seconds Age of the tier's oldest unallocated ResourceClaim; 0 when none waits.
# TYPE tierra_pending_claim_age_seconds gauge
tierra_pending_claim_age_seconds{tier="dev"} 0
tierra_pending_claim_age_seconds{tier="training"} 90
# HELP tierra_tier_yield_ratio Allocated GPU-equivalents over published GPUs of the tier.
# TYPE tierra_tier_yield_ratio gauge
tierra_tier_yield_ratio{tier="dev"} 0.1875
tierra_tier_yield_ratio{tier="training"} 0.5
`
	names := []string{"tierra_tier_gpus", "tierra_tier_stranded_gpus", "tierra_pending_claims", "tierra_pending_claim_age_seconds", "tierra_tier_yield_ratio"}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), names...))
	assert.InDelta(t, 0.625, testutil.ToFloat64(onlyMetric(t, reg, "tierra_tier_allocated_gpus", "n2")), 1e-9)
	cost, err := testutil.GatherAndCount(reg, "tierra_allocated_cost_dollars_per_hour")
	require.NoError(t, err)
	assert.Equal(t, 2, cost)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Equal(t, 4, state.calls, "every gather asks the state again")
}

// onlyMetric gathers the one series of name on node.
func onlyMetric(t *testing.T, reg *prometheus.Registry, name, node string) prometheus.Collector {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "copy"})
	g.Set(GaugeWith(t, reg, name, "node", node))
	return g
}

func TestControllerCollectorFailsTheScrapeOnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewControllerCollector(&fakeControllerState{err: errors.New("cache gone")}))
	_, err := reg.Gather()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cache gone")
}
