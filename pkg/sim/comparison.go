package sim

import (
	"fmt"
	"io"
	"strings"
)

// Comparison is the outcome of Compare: per cluster (policy) and scorer,
// the totals and each tier, averaged over the seeds.
type Comparison struct {
	Trace   string          `json:"trace"`
	MaxLoad float64         `json:"maxLoad"`
	Seeds   []int64         `json:"seeds"`
	Rows    []ComparisonRow `json:"rows"`
	Results []PolicySeed    `json:"results"`
}

// ComparisonRow is one cluster and scorer.
type ComparisonRow struct {
	Cluster string `json:"cluster"`
	Scorer  string `json:"scorer"`
	GPUs    int    `json:"gpus"`
	// AllocAt100 and AllocAtMax are the placed GPU requests, % of GPU
	// capacity, at 100% and at the maximum arrived load; HeldAtMax the
	// capacity the allocations hold, UnallocGPUs the GPUs' worth they
	// leave idle, at the maximum load.
	AllocAt100  float64    `json:"allocAt100"`
	AllocAtMax  float64    `json:"allocAtMax"`
	HeldAtMax   float64    `json:"heldAtMax"`
	UnallocGPUs float64    `json:"unallocatedGPUs"`
	Placed      float64    `json:"placedPods"`
	Failed      FailedPods `json:"failed"`
	Divergence  int        `json:"divergence"`
	Tiers       []TierRow  `json:"tiers"`
}

// TierRow is one tier of a row, averaged over the seeds.
type TierRow struct {
	Tier string `json:"tier"`
	GPUs int    `json:"gpus"`
	// Alloc and Held are % of the tier's GPU capacity; UnallocGPUs the
	// tier's GPUs' worth left idle.
	Alloc       float64 `json:"alloc"`
	Held        float64 `json:"held"`
	UnallocGPUs float64 `json:"unallocatedGPUs"`
	Pods        float64 `json:"pods"`
}

// unservedTier names the GPUs no tier serves.
const unservedTier = "(no tier)"

func newComparison(trace string, preps []*prepared, results []PolicySeed, o CompareOptions) *Comparison {
	c := &Comparison{Trace: trace, MaxLoad: o.MaxLoad, Seeds: o.Seeds, Results: results}
	for _, p := range preps {
		for _, s := range o.Scorers {
			c.Rows = append(c.Rows, summariseRow(p.cl, p.tierGPUs, s, results))
		}
	}
	return c
}

func summariseRow(cl *Cluster, tierGPUs map[string]int, scorer string, results []PolicySeed) ComparisonRow {
	row := ComparisonRow{Cluster: cl.Name, Scorer: scorer, GPUs: cl.GPUs, Failed: FailedPods{Whole: map[int]int{}}}
	tiers := map[string]*TierRow{}
	served := 0
	for _, t := range cl.Tiers {
		tiers[t.Name] = &TierRow{Tier: t.Name, GPUs: tierGPUs[t.Name]}
		served += tierGPUs[t.Name]
	}
	n := 0
	for _, r := range results {
		if r.Cluster != cl.Name || r.Scorer != scorer {
			continue
		}
		n++
		if len(r.Curve) > 100 {
			row.AllocAt100 += r.Curve[100]
		}
		row.AllocAtMax += r.Curve[len(r.Curve)-1]
		row.HeldAtMax += 100 * float64(r.HeldMilli) / float64(cl.GPUs*1000)
		row.UnallocGPUs += float64(int64(cl.GPUs)*1000-r.HeldMilli) / 1000
		row.Placed += float64(r.Placed)
		row.Failed.Fractional += r.Failed.Fractional
		row.Failed.CPUOnly += r.Failed.CPUOnly
		for k, v := range r.Failed.Whole {
			row.Failed.Whole[k] += v
		}
		row.Divergence += r.Divergence
		for name, ts := range r.Tiers {
			t := tiers[name]
			if t == nil || t.GPUs == 0 {
				continue
			}
			t.Alloc += 100 * float64(ts.RequestedMilli) / float64(t.GPUs*1000)
			t.Held += 100 * float64(ts.HeldMilli) / float64(t.GPUs*1000)
			t.UnallocGPUs += float64(int64(t.GPUs)*1000-ts.HeldMilli) / 1000
			t.Pods += float64(ts.Pods)
		}
	}
	if n == 0 {
		return row
	}
	f := float64(n)
	row.AllocAt100, row.AllocAtMax, row.HeldAtMax, row.UnallocGPUs, row.Placed = row.AllocAt100/f, row.AllocAtMax/f, row.HeldAtMax/f, row.UnallocGPUs/f, row.Placed/f
	for _, t := range cl.Tiers {
		tr := tiers[t.Name]
		if tr.GPUs == 0 {
			tr.UnallocGPUs = 0
		}
		tr.Alloc, tr.Held, tr.UnallocGPUs, tr.Pods = tr.Alloc/f, tr.Held/f, tr.UnallocGPUs/f, tr.Pods/f
		row.Tiers = append(row.Tiers, *tr)
	}
	if rest := cl.GPUs - served; rest > 0 {
		row.Tiers = append(row.Tiers, TierRow{Tier: unservedTier, GPUs: rest, UnallocGPUs: float64(rest)})
	}
	return row
}

// WriteText prints the comparison as one table: per cluster (policy) and
// scorer a total line, then one line per tier.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	maxPct := int(c.MaxLoad*100 + 0.5)
	fmt.Fprintf(&b, "workload %s, seeds %v, load grown to %d%% of each cluster's GPUs\n", c.Trace, c.Seeds, maxPct)
	fmt.Fprintf(&b, "alloc: placed pods' GPU requests; held: GPU capacity their devices hold (a MIG slice its memory slices); %% of the GPUs in the row\n\n")
	at := fmt.Sprintf("@%d", maxPct)
	fmt.Fprintf(&b, "%-12s %-8s %-12s %5s %9s %9s %9s %11s %9s  %s\n", "policy", "scorer", "tier", "GPUs",
		"alloc@100", "alloc"+at, "held"+at, "unalloc GPU", "pods", "failed pods (whole by GPUs, fractional, cpu-only)")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "%-12s %-8s %-12s %5d %8.2f%% %8.2f%% %8.2f%% %11.1f %9.0f  %s\n", r.Cluster, r.Scorer, "(all)", r.GPUs,
			r.AllocAt100, r.AllocAtMax, r.HeldAtMax, r.UnallocGPUs, r.Placed, r.Failed)
		for _, t := range r.Tiers {
			fmt.Fprintf(&b, "%-12s %-8s %-12s %5d %9s %8.2f%% %8.2f%% %11.1f %9.0f\n", "", "", t.Tier, t.GPUs, "", t.Alloc, t.Held, t.UnallocGPUs, t.Pods)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
