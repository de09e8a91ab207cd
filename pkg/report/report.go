package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one tenant's use of one tier.
type Row struct {
	Tenant string `json:"tenant"`
	Tier   string `json:"tier"`
	// Claims and Devices count the prepared claims and the devices they
	// hold; GPUs counts the physical GPUs under those devices.
	Claims  int `json:"claims"`
	Devices int `json:"devices"`
	GPUs    int `json:"gpus"`
	// Utilization is the mean SM use of the tenant's pods on these GPUs
	// (0..1); nil when no per-pod use was measured.
	Utilization *float64 `json:"utilization,omitempty"`
	// MemoryUsedBytes is the GPU memory the tenant's processes use.
	MemoryUsedBytes float64 `json:"memoryUsedBytes"`
	// CostPerHour is the allocated devices' price, in dollars per hour.
	CostPerHour float64 `json:"costPerHour"`
	IdleClaims  int     `json:"idleClaims"`
}

// Finding is one claim that an operator should look at.
type Finding struct {
	Namespace string `json:"namespace"`
	Claim     string `json:"claim"`
	Tenant    string `json:"tenant"`
	Tier      string `json:"tier"`
	// Text says what was seen ("idle", or a right-size suggestion).
	Text string `json:"text"`
}

// Report is what `tierra report` prints.
type Report struct {
	Rows      []Row     `json:"rows"`
	Idle      []Finding `json:"idle,omitempty"`
	RightSize []Finding `json:"rightSize,omitempty"`
}

type key struct{ tenant, tier string }

// Build aggregates samples per tenant and tier.
func Build(samples []Sample) Report {
	rows := map[key]*Row{}
	row := func(l map[string]string) *Row {
		k := key{cmp.Or(l["tenant"], "-"), cmp.Or(l["tier"], "-")}
		if rows[k] == nil {
			rows[k] = &Row{Tenant: k.tenant, Tier: k.tier}
		}
		return rows[k]
	}
	type set = map[string]bool
	claims, devices, gpus := map[key]set{}, map[key]set{}, map[key]set{}
	add := func(m map[key]set, r *Row, id string) int {
		k := key{r.Tenant, r.Tier}
		if m[k] == nil {
			m[k] = set{}
		}
		m[k][id] = true
		return len(m[k])
	}
	utilSum, utilN := map[key]float64{}, map[key]int{}
	facts := map[string]*claim{}
	var rep Report
	for _, s := range samples {
		r := row(s.Labels)
		k := key{r.Tenant, r.Tier}
		l := s.Labels
		switch s.Name {
		case ClaimDeviceInfo:
			r.Claims = add(claims, r, l["namespace"]+"/"+l["claim"])
			r.Devices = add(devices, r, l["node"]+"/"+l["device"])
			r.GPUs = add(gpus, r, cmp.Or(l["gpu_uuid"], l["node"]+"/"+l["device"]))
		case PodUtilization:
			utilSum[k] += s.Value
			utilN[k]++
		case PodMemoryUsed:
			r.MemoryUsedBytes += s.Value
		case AllocatedCost:
			r.CostPerHour += s.Value
		case ClaimIdle, ClaimIdleFor, ClaimOversized, ClaimSavings, ClaimPeakMemory, ClaimPeakUtil:
			claimFacts(facts, s)
		}
	}
	for _, f := range facts {
		r := row(f.labels)
		if f.idle {
			r.IdleClaims++
			rep.Idle = append(rep.Idle, finding(f.labels, "idle for "+
				(time.Duration(f.idleFor)*time.Second).String()+f.peaks()))
		}
		if f.suggested != "" {
			rep.RightSize = append(rep.RightSize, finding(f.labels, strings.TrimPrefix(f.peaks(), ", ")+
				": "+f.suggested+" would fit"+savings(f.savings)))
		}
	}
	for k, r := range rows {
		if n := utilN[k]; n > 0 {
			u := utilSum[k] / float64(n)
			r.Utilization = &u
		}
		rep.Rows = append(rep.Rows, *r)
	}
	slices.SortFunc(rep.Rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Tier, b.Tier))
	})
	byClaim := func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Claim, b.Claim))
	}
	slices.SortFunc(rep.Idle, byClaim)
	slices.SortFunc(rep.RightSize, byClaim)
	return rep
}

func finding(l map[string]string, text string) Finding {
	return Finding{Namespace: l["namespace"], Claim: l["claim"], Tenant: l["tenant"], Tier: l["tier"], Text: text}
}

// Formats are the output formats Write accepts.
var Formats = []string{"table", "json"}

// Write prints the report as a table or JSON.
func Write(w io.Writer, rep Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "table", "":
		return writeTable(w, rep)
	}
	return fmt.Errorf("output %q: want one of %v", format, Formats)
}

func writeTable(w io.Writer, rep Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTIER\tCLAIMS\tDEVICES\tGPUS\tSM USE\tGPU MEMORY\t$/HOUR\tIDLE CLAIMS")
	var total float64
	for _, r := range rep.Rows {
		util := "-"
		if r.Utilization != nil {
			util = fmt.Sprintf("%.0f%%", *r.Utilization*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.2f\t%d\n", r.Tenant, r.Tier, r.Claims, r.Devices, r.GPUs,
			util, gib(r.MemoryUsedBytes), r.CostPerHour, r.IdleClaims)
		total += r.CostPerHour
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t\t\t%.2f\t\n", total)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, section := range []struct {
		title string
		list  []Finding
	}{{"Idle claims", rep.Idle}, {"Right-size suggestions", rep.RightSize}} {
		if len(section.list) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", section.title)
		for _, f := range section.list {
			fmt.Fprintf(w, "  %s/%s (%s, %s): %s\n", f.Namespace, f.Claim, f.Tenant, f.Tier, f.Text)
		}
	}
	return nil
}

func gib(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f GiB", b/(1<<30))
}

// claim is what the idle and right-size series say of one claim.
type claim struct {
	labels            map[string]string
	idle              bool
	idleFor           float64
	suggested         string
	savings           float64
	peakMem, peakUtil float64
	hasMem, hasUtil   bool
}

func claimFacts(facts map[string]*claim, s Sample) {
	l := s.Labels
	id := l["namespace"] + "/" + l["claim"]
	f := facts[id]
	if f == nil {
		f = &claim{labels: l}
		facts[id] = f
	}
	switch s.Name {
	case ClaimIdle:
		f.idle = s.Value > 0
	case ClaimIdleFor:
		f.idleFor = s.Value
	case ClaimOversized:
		if s.Value > 0 {
			f.suggested = l["suggested"]
		}
	case ClaimSavings:
		f.savings = s.Value
	case ClaimPeakMemory:
		f.peakMem, f.hasMem = s.Value, true
	case ClaimPeakUtil:
		f.peakUtil, f.hasUtil = s.Value, true
	}
}

// peaks is ", peak 11.0 GiB / 9% SM" (the parts known), or "".
func (f *claim) peaks() string {
	var parts []string
	if f.hasMem {
		parts = append(parts, fmt.Sprintf("%.1f GiB", f.peakMem/(1<<30)))
	}
	if f.hasUtil {
		parts = append(parts, fmt.Sprintf("%.0f%% SM", f.peakUtil*100))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", peak " + strings.Join(parts, " / ")
}

func savings(v float64) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf(", saving $%.2f/h", v)
}
