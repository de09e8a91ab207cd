package sim

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ScorerSummary is one scorer averaged over the seeds.
type ScorerSummary struct {
	Scorer string `json:"scorer"`
	// Curve[k] is the mean allocated % of GPU capacity at k% arrived load.
	Curve         []float64 `json:"curve"`
	AllocAt100    float64   `json:"allocAt100"`
	AllocAtMax    float64   `json:"allocAtMax"`
	AllocAtMaxMin float64   `json:"allocAtMaxMin"`
	AllocAtMaxMax float64   `json:"allocAtMaxMax"`
	UnallocGPUs   float64   `json:"unallocatedGPUs"`
	FragRatio     float64   `json:"fragRatio"`
	// Failed sums the failed pods over all seeds.
	Failed FailedPods `json:"failed"`
	// ClaimsPerSec is placed claims per second of simulation (scoring,
	// prefilter and allocator); AllocatorClaimsPerSec counts only the time
	// inside the allocator.
	ClaimsPerSec          float64 `json:"claimsPerSec"`
	AllocatorClaimsPerSec float64 `json:"allocatorClaimsPerSec"`
	Divergence            int     `json:"divergence"`
	Seeds                 int     `json:"seeds"`
}

// Report is the outcome of Run.
type Report struct {
	Trace     string          `json:"trace"`
	GPUs      int             `json:"gpus"`
	MaxLoad   float64         `json:"maxLoad"`
	Arrival   string          `json:"arrival"`
	Typical   string          `json:"typical"`
	Seeds     []int64         `json:"seeds"`
	Summaries []ScorerSummary `json:"summaries"`
	Results   []SeedResult    `json:"results"`
	// Baselines are FGD's published allocation rates at 130% for this
	// trace, by FGD policy name (empty when not found).
	Baselines       map[string]float64 `json:"baselines,omitempty"`
	WallSeconds     float64            `json:"wallSeconds"`
	PeakHeapBytes   uint64             `json:"peakHeapBytes"`
	SysBytes        uint64             `json:"sysBytes"`
	Parallel        int                `json:"parallel"`
	AllocatorSelect string             `json:"allocator"`
}

func newReport(tr *Trace, gpus int, o Options, results []SeedResult, wall time.Duration, peak, sys uint64) *Report {
	r := &Report{Trace: tr.Name, GPUs: gpus, MaxLoad: o.MaxLoad, Arrival: cmp.Or(o.Arrival, ArrivalFGD), Typical: typicalMode(o), Seeds: o.Seeds, Results: results,
		WallSeconds: wall.Seconds(), PeakHeapBytes: peak, SysBytes: sys, Parallel: o.Parallel,
		AllocatorSelect: "incubating (kube-scheduler 1.37 default features)"}
	for _, name := range o.Scorers {
		r.Summaries = append(r.Summaries, summarise(name, results))
	}
	return r
}

func typicalMode(o Options) string {
	if o.OnlineTypical {
		return "online"
	}
	return "trace"
}

func summarise(name string, results []SeedResult) ScorerSummary {
	s := ScorerSummary{Scorer: name, Failed: FailedPods{Whole: map[int]int{}}, AllocAtMaxMin: 101}
	var wall, alloc time.Duration
	claims := 0
	for _, r := range results {
		if r.Scorer != name {
			continue
		}
		s.Seeds++
		if len(s.Curve) < len(r.Curve) {
			s.Curve = append(s.Curve, make([]float64, len(r.Curve)-len(s.Curve))...)
		}
		for k, v := range r.Curve {
			s.Curve[k] += v
		}
		last := r.Curve[len(r.Curve)-1]
		s.AllocAtMax += last
		s.AllocAtMaxMin = min(s.AllocAtMaxMin, last)
		s.AllocAtMaxMax = max(s.AllocAtMaxMax, last)
		if len(r.Curve) > 100 {
			s.AllocAt100 += r.Curve[100]
		}
		s.UnallocGPUs += r.UnallocGPUs
		s.FragRatio += r.FragRatio
		s.Failed.Fractional += r.Failed.Fractional
		s.Failed.CPUOnly += r.Failed.CPUOnly
		for k, v := range r.Failed.Whole {
			s.Failed.Whole[k] += v
		}
		s.Divergence += r.Divergence
		wall += r.Wall
		alloc += r.AllocatorTime
		claims += r.Claims
	}
	if s.Seeds == 0 {
		return s
	}
	n := float64(s.Seeds)
	for k := range s.Curve {
		s.Curve[k] /= n
	}
	s.AllocAtMax /= n
	s.AllocAt100 /= n
	s.UnallocGPUs /= n
	s.FragRatio /= n
	s.ClaimsPerSec = float64(claims) / wall.Seconds()
	if alloc > 0 {
		s.AllocatorClaimsPerSec = float64(claims) / alloc.Seconds()
	}
	return s
}

// fgdPolicies maps FGD's policy column to the names FGD's paper uses.
var fgdPolicies = map[string]string{
	"01-Random": "Random", "02-DotProd": "DotProd", "03-GpuClustering": "Clustering",
	"04-GpuPacking": "GpuPacking", "05-BestFit": "BestFit", "06-FGD": "FGD",
}

// LoadBaselines reads FGD's analysis_allo_discrete.csv and returns, for
// one workload (e.g. "openb_pod_list_default"), each policy's mean
// allocation rate at 130% arrived load. A missing file is not an error.
func LoadBaselines(path, workload string) (map[string]float64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open baselines: %w", err)
	}
	defer func() { _ = f.Close() }()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: read header: %w", path, err)
	}
	col := -1
	for i, h := range header {
		if h == "130" {
			col = i
		}
	}
	if col < 0 || len(header) < 2 || header[0] != "workload" || header[1] != "sc_policy" {
		return nil, fmt.Errorf("%s:1: %w: want columns workload, sc_policy, ..., 130", path, ErrBadTrace)
	}
	sum, n := map[string]float64{}, map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if rec[0] != workload {
			continue
		}
		v, err := strconv.ParseFloat(rec[col], 64)
		if err != nil {
			line, c := r.FieldPos(col)
			return nil, fmt.Errorf("%s:%d:%d: column 130: %w: %q", path, line, c, ErrBadTrace, rec[col])
		}
		name := fgdPolicies[rec[1]]
		if name == "" {
			name = rec[1]
		}
		sum[name] += v
		n[name]++
	}
	out := map[string]float64{}
	for k, v := range sum {
		out[k] = v / float64(n[k])
	}
	return out, nil
}

// WriteText prints the human-readable report.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	maxPct := int(r.MaxLoad*100 + 0.5)
	fmt.Fprintf(&b, "trace %s: %d GPUs, seeds %v, load grown to %d%% (arrival %s, typical pods %s), allocator: %s\n\n", r.Trace, r.GPUs, r.Seeds, maxPct, r.Arrival, r.Typical, r.AllocatorSelect)
	fmt.Fprintf(&b, "%-8s %9s %9s %11s %9s %9s %10s %10s %5s  %s\n", "scorer", "alloc@100", fmt.Sprintf("alloc@%d", maxPct),
		"unalloc GPU", "frag %", "claims/s", "alloc c/s", "min-max", "div", "failed pods (whole by GPUs, fractional, cpu-only)")
	for _, s := range r.Summaries {
		fmt.Fprintf(&b, "%-8s %8.2f%% %8.2f%% %11.1f %8.2f%% %9.0f %10.0f %4.1f-%4.1f %5d  %s\n", s.Scorer, s.AllocAt100, s.AllocAtMax,
			s.UnallocGPUs, s.FragRatio, s.ClaimsPerSec, s.AllocatorClaimsPerSec, s.AllocAtMaxMin, s.AllocAtMaxMax, s.Divergence, s.Failed)
	}
	fmt.Fprintf(&b, "\nwall %.1fs with %d seeds in parallel; peak heap %.0f MiB, runtime sys %.0f MiB\n",
		r.WallSeconds, r.Parallel, float64(r.PeakHeapBytes)/(1<<20), float64(r.SysBytes)/(1<<20))
	if len(r.Baselines) > 0 {
		names := make([]string, 0, len(r.Baselines))
		for k := range r.Baselines {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return r.Baselines[names[i]] < r.Baselines[names[j]] })
		fmt.Fprintf(&b, "\nFGD (Weng et al., ATC'23) published allocation at 130%% for this trace:\n")
		for _, k := range names {
			fmt.Fprintf(&b, "  %-11s %6.2f%%\n", k, r.Baselines[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (f FailedPods) String() string {
	keys := make([]int, 0, len(f.Whole))
	for k := range f.Whole {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%dx:%d", k, f.Whole[k]))
	}
	return fmt.Sprintf("whole[%s] frac %d cpu %d", strings.Join(parts, " "), f.Fractional, f.CPUOnly)
}
