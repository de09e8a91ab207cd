package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierra-gpu/tierra/pkg/usage"
)

// ClaimReporter reports each tracked claim's idleness, peaks and right-size
// suggestion (*usage.Tracker).
type ClaimReporter interface {
	Report() []usage.ClaimReport
}

var claimLabels = []string{"namespace", "claim", "tenant", "tier"}

var (
	claimIdleDesc = prometheus.NewDesc(Namespace+"_claim_idle",
		"1 when every GPU of the claim stayed below the idle threshold (SM) for the idle window, else 0.", claimLabels, nil)
	claimIdleSecondsDesc = prometheus.NewDesc(Namespace+"_claim_idle_seconds",
		"Seconds since any GPU of the claim was last at or above the idle threshold (since the plugin began watching it, if never).",
		claimLabels, nil)
	claimPeakMemoryDesc = prometheus.NewDesc(Namespace+"_claim_peak_memory_used_bytes",
		"Highest GPU memory the claim's pods held on one of its devices while watched.", claimLabels, nil)
	claimPeakUtilizationDesc = prometheus.NewDesc(Namespace+"_claim_peak_utilization_ratio",
		"Highest SM share (0-1) the claim's pods used on one of its devices while watched; absent for MIG devices.", claimLabels, nil)
	claimOversizedDesc = prometheus.NewDesc(Namespace+"_claim_oversized",
		"1 for a claim whose peaks, with headroom, fit the cheaper size in label suggested.",
		append(claimLabels[:len(claimLabels):len(claimLabels)], "suggested"), nil)
	claimSavingsDesc = prometheus.NewDesc(Namespace+"_claim_rightsize_savings_dollars_per_hour",
		"Dollars per hour the suggested size would save over what the claim holds.",
		append(claimLabels[:len(claimLabels):len(claimLabels)], "suggested"), nil)
)

// IdleCollector exports the tracker's view of each claim at scrape time.
type IdleCollector struct {
	reports ClaimReporter
}

var _ prometheus.Collector = (*IdleCollector)(nil)

// NewIdleCollector returns the collector over r; register it on the
// plugin's registry.
func NewIdleCollector(r ClaimReporter) *IdleCollector { return &IdleCollector{reports: r} }

// Describe implements prometheus.Collector.
func (c *IdleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{claimIdleDesc, claimIdleSecondsDesc, claimPeakMemoryDesc,
		claimPeakUtilizationDesc, claimOversizedDesc, claimSavingsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *IdleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.reports.Report() {
		labels := []string{r.Claim.Namespace, r.Claim.Name, r.Claim.Tenant, r.Claim.Tier}
		idle := 0.0
		if r.Idle {
			idle = 1
		}
		ch <- prometheus.MustNewConstMetric(claimIdleDesc, prometheus.GaugeValue, idle, labels...)
		ch <- prometheus.MustNewConstMetric(claimIdleSecondsDesc, prometheus.GaugeValue, r.IdleFor.Seconds(), labels...)
		ch <- prometheus.MustNewConstMetric(claimPeakMemoryDesc, prometheus.GaugeValue, float64(r.PeakMemoryBytes), labels...)
		if r.PeakSMKnown {
			ch <- prometheus.MustNewConstMetric(claimPeakUtilizationDesc, prometheus.GaugeValue, r.PeakSMRatio, labels...)
		}
		if s := r.Suggestion; s != nil {
			sl := append(labels, s.Size.Name)
			ch <- prometheus.MustNewConstMetric(claimOversizedDesc, prometheus.GaugeValue, 1, sl...)
			ch <- prometheus.MustNewConstMetric(claimSavingsDesc, prometheus.GaugeValue, s.Savings(), sl...)
		}
	}
}
