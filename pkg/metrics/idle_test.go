package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

type reports []usage.ClaimReport

func (r reports) Report() []usage.ClaimReport { return r }

func TestIdleCollector(t *testing.T) {
	c := func(ns, name string) usage.Claim {
		return usage.Claim{Namespace: ns, Name: name, Tenant: "acme", Tier: "training"}
	}
	r := reports{
		{Claim: c("team-a", "idle"), Idle: true, IdleFor: 3 * time.Hour, PeakMemoryBytes: 1 << 30, PeakSMRatio: 0.01, PeakSMKnown: true},
		{Claim: c("team-a", "mig"), IdleFor: 0, PeakMemoryBytes: 5 << 30},
		{Claim: c("team-b", "big"), IdleFor: time.Minute, PeakMemoryBytes: 11 << 30, PeakSMRatio: 0.09, PeakSMKnown: true,
			Suggestion: &usage.Suggestion{Size: usage.Size{Name: "inference 1g.18gb"}, CostPerHour: 0.44, CurrentCostPerHour: 3.5}},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewIdleCollector(r))
	want := `
# HELP tierra_claim_idle 1 when every GPU of the claim stayed below the idle threshold (SM) for the idle window, else 0.
# TYPE tierra_claim_idle gauge
tierra_claim_idle{claim="big",namespace="team-b",tenant="acme",tier="training"} 0
tierra_claim_idle{claim="idle",namespace="team-a",tenant="acme",tier="training"} 1
tierra_claim_idle{claim="mig",namespace="team-a",tenant="acme",tier="training"} 0
# HELP tierra_claim_idle_seconds Seconds since any GPU of the claim was last at or above the idle threshold (since the plugin began watching it, if never).
# TYPE tierra_claim_idle_seconds gauge
tierra_claim_idle_seconds{claim="big",namespace="team-b",tenant="acme",tier="training"} 60
tierra_claim_idle_seconds{claim="idle",namespace="team-a",tenant="acme",tier="training"} 10800
tierra_claim_idle_seconds{claim="mig",namespace="team-a",tenant="acme",tier="training"} 0
# HELP tierra_claim_peak_utilization_ratio Highest SM share (0-1) the claim's pods used on one of its devices while watched; absent for MIG devices.
# TYPE tierra_claim_peak_utilization_ratio gauge
tierra_claim_peak_utilization_ratio{claim="big",namespace="team-b",tenant="acme",tier="training"} 0.09
tierra_claim_peak_utilization_ratio{claim="idle",namespace="team-a",tenant="acme",tier="training"} 0.01
# HELP tierra_claim_oversized 1 for a claim whose peaks, with headroom, fit the cheaper size in label suggested.
# TYPE tierra_claim_oversized gauge
tierra_claim_oversized{claim="big",namespace="team-b",suggested="inference 1g.18gb",tenant="acme",tier="training"} 1
# HELP tierra_claim_rightsize_savings_dollars_per_hour Dollars per hour the suggested size would save over what the claim holds.
# TYPE tierra_claim_rightsize_savings_dollars_per_hour gauge
tierra_claim_rightsize_savings_dollars_per_hour{claim="big",namespace="team-b",suggested="inference 1g.18gb",tenant="acme",tier="training"} 3.06
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "tierra_claim_idle", "tierra_claim_idle_seconds",
		"tierra_claim_peak_utilization_ratio", "tierra_claim_oversized", "tierra_claim_rightsize_savings_dollars_per_hour"))
	n, err := testutil.GatherAndCount(reg, "tierra_claim_peak_memory_used_bytes")
	require.NoError(t, err)
	require.Equal(t, 3, n)
}
