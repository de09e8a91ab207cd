package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/pkg/sim"
)

// policyFlags are sim's flags for the user's own cluster and policies.
type policyFlags struct {
	nodes, kubeconfig string
	policies          []string
}

func (p *policyFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&p.nodes, "nodes", "", "node list CSV (sn,cpu_milli,memory_mib,gpu,model[,labels][,mig]); default: openb's node list in --data")
	fl.StringArrayVar(&p.policies, "policy", nil, "TierPolicy YAML to publish the nodes under; repeat to compare policies in one table")
	fl.StringVar(&p.kubeconfig, "kubeconfig", "", "replay on a live cluster's Nodes and ResourceSlices (read with this kubeconfig) instead of a node list")
}

// active reports whether the run publishes under policies or reads a live
// cluster, rather than the openb benchmark's one shared device per GPU.
func (p *policyFlags) active() bool { return len(p.policies) > 0 || p.kubeconfig != "" }

// nodeList is the node list path: --nodes, else openb's in the data dir.
func (p *policyFlags) nodeList(dir string) string {
	if p.nodes != "" {
		return p.nodes
	}
	return filepath.Join(dir, sim.NodeListFile)
}

// policyHelp is appended to sim's --help.
var policyHelp = `

Your own cluster and TierPolicy. --nodes takes a node list like openb's;
model is an openb model (` + strings.Join(sim.ModelNames(), ", ") + `) or one of
the fake machine catalogue (` + strings.Join(sim.CatalogueNames(), ", ") + `: pkg/nvgpu's dgx/l4 fake
machines, read through the plugin's own NVML discovery, at most their GPU
count per node); optional columns labels ("k=v;k2=v2", for the policy's
node selectors) and mig (true/false: pin the GPUs' MIG mode).
Without --policy every GPU is one shared device (the benchmark). With
--policy A.yaml [--policy B.yaml ...] each node is published exactly as the
kubelet plugin publishes it under that policy (pkg/slices, DeviceClasses
from pkg/tiers): Whole GPUs, Shared devices with consumable compute and
memory, MIG placements. A GPU whose tier is MIG is put in MIG mode unless
the mig column says otherwise. Every policy replays the same arrivals per
seed and one table compares them, per policy and scorer and per tier:
alloc (placed pods' GPU requests), held (GPU capacity their devices hold;
a MIG slice holds its memory slices of 8) and unallocated GPUs.
--kubeconfig reads a live cluster instead: its schedulable Nodes, the
driver's ResourceSlices and the tier DeviceClasses; allocations already
there are not read (the replay starts from empty devices).

How a pod becomes a claim under a policy: it claims one partitioning, the
first of its preference the cluster has a tier of. A pod with the optional
pod list column mig_profile (1g, 2g, 3g, 4g, 7g, or e.g. 1g.18gb) prefers
MIG (that profile), then Shared (slices/7 of the compute), then Whole; other
fractional pods prefer Shared (gpu_milli of the compute), then MIG (the
smallest profile whose slices/7 cover gpu_milli: 1g up to 142, 2g 285,
3g 428, 4g 571, else 7g), then Whole (a GPU of their own); whole-GPU pods
prefer Whole, then Shared (all of the compute), then MIG (7g). Several tiers
of that partitioning become a firstAvailable list in policy order. Shared
requests ask the least GPU memory (the trace states compute only);
gpu_spec is a productName selector; claims are in a namespace of no tenant,
with the tenancy admission selectors added.

  tierra sim --nodes nodes.csv --pods pods.csv --policy shared.yaml --policy mig.yaml
  tierra sim --kubeconfig ~/.kube/config --pods pods.csv --scorers frag`

// runPolicySim publishes the node list under each --policy (or reads the
// live cluster) and prints one comparison.
func runPolicySim(cmd *cobra.Command, f simFlags) error {
	p := f.policy
	if p.kubeconfig != "" && (len(p.policies) > 0 || p.nodes != "") {
		return fmt.Errorf("--kubeconfig replays on the live cluster's own devices; it excludes --policy and --nodes")
	}
	if f.plot != "" {
		return fmt.Errorf("--plot draws the benchmark's curves; it is not available with --policy or --kubeconfig")
	}
	seeds, err := parseSeeds(f.seeds)
	if err != nil {
		return err
	}
	dir, err := sim.ResolveDataDir(f.data)
	if err != nil {
		return err
	}
	pods, workload, err := loadPodList(dir, f.pods)
	if err != nil {
		return err
	}
	clusters, err := policyClusters(cmd, p, dir)
	if err != nil {
		return err
	}
	for _, cl := range clusters {
		fmt.Fprintf(cmd.ErrOrStderr(), "sim: %s\n", cl)
	}
	cmp, err := sim.Compare(cmd.Context(), clusters, &sim.Trace{Name: workload, Pods: pods}, sim.CompareOptions{
		Scorers: splitList(f.scorers), Seeds: seeds, MaxLoad: f.maxLoad, Parallel: f.parallel,
		MaxPods: f.maxPods, Arrival: f.arrival, Progress: cmd.ErrOrStderr(),
	})
	if err != nil {
		return err
	}
	if f.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(cmp)
	}
	return cmp.WriteText(cmd.OutOrStdout())
}

// policyClusters is the live cluster, or the node list published under
// each policy (named after its file, so two policies both named default
// stay apart).
func policyClusters(cmd *cobra.Command, p policyFlags, dir string) ([]*sim.Cluster, error) {
	ctx := cmd.Context()
	if p.kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", p.kubeconfig, err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", p.kubeconfig, err)
		}
		cl, err := sim.LiveCluster(ctx, client)
		if err != nil {
			return nil, err
		}
		return []*sim.Cluster{cl}, nil
	}
	nodes, err := sim.LoadNodes(p.nodeList(dir))
	if err != nil {
		return nil, err
	}
	var out []*sim.Cluster
	seen := map[string]bool{}
	for _, path := range p.policies {
		policy, err := plan.LoadPolicy(path)
		if err != nil {
			return nil, err
		}
		cl, err := sim.PublishCluster(ctx, nodes, policy)
		if err != nil {
			return nil, err
		}
		cl.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if seen[cl.Name] {
			return nil, fmt.Errorf("--policy %s: two policy files named %s; rename one", path, cl.Name)
		}
		seen[cl.Name] = true
		out = append(out, cl)
	}
	return out, nil
}

// loadPodList reads the pod list (a file in the data dir, or a path) and
// names the workload after it.
func loadPodList(dir, name string) ([]sim.Pod, string, error) {
	path := name
	if !strings.ContainsRune(path, filepath.Separator) {
		path = filepath.Join(dir, path)
	}
	pods, err := sim.LoadPods(path)
	if err != nil {
		return nil, "", err
	}
	return pods, strings.TrimSuffix(filepath.Base(path), ".csv"), nil
}
