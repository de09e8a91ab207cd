package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tierra-gpu/tierra/pkg/sim"
)

func init() { subcommands = append(subcommands, newSimCommand) }

type simFlags struct {
	data, pods, scorers, seeds, output, plot string
	arrival, typical                         string
	maxLoad                                  float64
	parallel, maxPods                        int
	policy                                   policyFlags
}

func newSimCommand() *cobra.Command {
	f := simFlags{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Replay a GPU cluster trace through the scheduler's DRA allocator and report GPU yield",
		Long: `sim replays a GPU cluster trace through the Kubernetes scheduler's own DRA
allocator (k8s.io/dynamic-resource-allocation/structured, with the features
kube-scheduler 1.37 enables by default) and reports how much GPU capacity
each node scoring policy allocates as the arrived load grows.

Nodes come from openb_node_list_gpu_node.csv; their GPUs are published by
pkg/slices as shared devices (consumable compute and memory). Each pod of the
pod list becomes one ResourceClaim: whole GPUs are an ExactCount request,
a fractional GPU is one compute-share request; gpu_spec becomes a CEL
selector on productName; cpu and memory must fit the node.

The setup follows FGD: arrival only; with --arrival fgd (the default) the
pods arrive in FGD's simulator's order (sorted by name, shuffled with the
seed by Go's math/rand, then pods resampled from the trace appended until
the next would pass --max-load x capacity); the metric is the allocated GPU
share against the arrived load. Scorers:
  default  kube-scheduler's default scoring (LeastAllocated + BalancedAllocation)
  random   any feasible node
  bestfit  least idle GPU share left on the node
  frag     fragmentation-aware (FGD-style expected fragmentation growth)
  yield    frag with the host counted: idle GPU share the node's cpu and
           memory can no longer feed counts as fragmented

Data and method: Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23;
trace: Alibaba cluster-trace-gpu-v2023 (research and study use).` + policyHelp,
		Example: `  tierra sim
  tierra sim --pods openb_pod_list_gpushare40.csv --scorers bestfit,frag --plot yield.svg
  tierra sim --seeds 42 --max-pods 2000 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "directory holding the openb trace (default ../shared/data/openb next to the repository root)")
	fl.StringVar(&f.pods, "pods", sim.DefaultPodList, "pod list file inside --data (or a path)")
	fl.StringVar(&f.scorers, "scorers", strings.Join(sim.ScorerNames(), ","), "comma-separated scorers to compare: "+strings.Join(sim.ScorerNames(), ", "))
	fl.StringVar(&f.seeds, "seeds", "42-51", "seeds: a list and/or ranges, e.g. 42-51 or 42,45")
	fl.Float64Var(&f.maxLoad, "max-load", 1.3, "grow the arrived GPU requests to this multiple of GPU capacity")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.plot, "plot", "", "also write the allocation curves as an SVG to this file")
	fl.IntVar(&f.parallel, "parallel", 2, "how many seeds to run at once")
	fl.StringVar(&f.arrival, "arrival", sim.ArrivalFGD, "arrival generator: fgd (FGD's simulator: shuffled trace, then resampled pods appended) or legacy (trace and resampled pods shuffled together)")
	fl.StringVar(&f.typical, "typical", "trace", "typical pods (the target workload frag and yield measure against): trace (the whole pod list, as FGD; hindsight) or online (learnt from the pods arrived so far)")
	fl.IntVar(&f.maxPods, "max-pods", 0, "keep only the first N pods of the pod list (0: all)")
	f.policy.register(fl)
	return cmd
}

func runSim(cmd *cobra.Command, f simFlags) error {
	if f.typical != "trace" && f.typical != "online" {
		return fmt.Errorf("--typical %q: want trace or online", f.typical)
	}
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.policy.active() {
		return runPolicySim(cmd, f)
	}
	seeds, err := parseSeeds(f.seeds)
	if err != nil {
		return err
	}
	dir, err := sim.ResolveDataDir(f.data)
	if err != nil {
		return err
	}
	nodes, err := sim.LoadNodes(f.policy.nodeList(dir))
	if err != nil {
		return err
	}
	podPath := f.pods
	if !strings.ContainsRune(podPath, os.PathSeparator) {
		podPath = filepath.Join(dir, podPath)
	}
	pods, err := sim.LoadPods(podPath)
	if err != nil {
		return err
	}
	workload := strings.TrimSuffix(filepath.Base(podPath), ".csv")
	rep, err := sim.Run(cmd.Context(), &sim.Trace{Name: workload, Nodes: nodes, Pods: pods}, sim.Options{
		Scorers: splitList(f.scorers), Seeds: seeds, MaxLoad: f.maxLoad, Parallel: f.parallel,
		MaxPods: f.maxPods, Arrival: f.arrival, OnlineTypical: f.typical == "online", Progress: cmd.ErrOrStderr(), Publish: sim.SlicesPublisher,
	})
	if err != nil {
		return err
	}
	if rep.Baselines, err = sim.LoadBaselines(filepath.Join(dir, "..", "fgd", "analysis_allo_discrete.csv"), workload); err != nil {
		return err
	}
	if f.plot != "" {
		if err := writeSVG(f.plot, rep); err != nil {
			return err
		}
	}
	if f.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(cmd.OutOrStdout())
}

func writeSVG(path string, rep *sim.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := rep.WriteSVG(out); err != nil {
		_ = out.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return out.Close()
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseSeeds reads "42-51", "42,45" or a mix.
func parseSeeds(s string) ([]int64, error) {
	var seeds []int64
	for _, part := range splitList(s) {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 64); err != nil {
				return nil, fmt.Errorf("--seeds %q: %w", s, err)
			}
		}
		if b < a || b-a > 10000 {
			return nil, fmt.Errorf("--seeds %q: bad range %s", s, part)
		}
		for v := a; v <= b; v++ {
			seeds = append(seeds, v)
		}
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("--seeds %q: no seeds", s)
	}
	return seeds, nil
}
