package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/plan"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

func init() { subcommands = append(subcommands, newAllocateCommand) }

var allocateFormats = []string{"table", "json"}

func newAllocateCommand() *cobra.Command {
	var clusterFile, policyFile, output string
	cmd := &cobra.Command{
		Use:   "allocate [flags] CLAIMS...",
		Short: "Place ResourceClaims on a set of nodes offline, with the scheduler's own allocator",
		Long: `allocate publishes every node of the cluster file exactly as the kubelet plugin
would (its GPUs through NVML or a fake machine, the TierPolicy's tiers and prices),
renders the tier DeviceClasses as tierra-controller would, and places each
ResourceClaim (or ResourceClaimTemplate) from CLAIMS, in order, through
k8s.io/dynamic-resource-allocation/structured with kube-scheduler 1.37's default
feature set. A claim goes to the node where its firstAvailable requests get their
earliest choice (kube-scheduler's DynamicResources score), else the first node in
the file that fits. It prints claim → class → tier → node → devices → cost per hour,
and each node's yield. CLAIMS are YAML files or directories of them; other kinds
(Pods, ...) are skipped.`,
		Example: `  tierra allocate --cluster demo/cluster.yaml --policy demo/tierpolicy.yaml demo/scenarios`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(allocateFormats, output) {
				return fmt.Errorf("--output %q: want one of %s", output, strings.Join(allocateFormats, ", "))
			}
			res, err := runAllocate(cmd.Context(), clusterFile, policyFile, args)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return plan.WriteTable(cmd.OutOrStdout(), res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&clusterFile, "cluster", "demo/cluster.yaml", "YAML file listing the nodes: name, machine (fake:<name> or empty for real NVML), labels, migEnabled")
	fl.StringVar(&policyFile, "policy", "demo/tierpolicy.yaml", "the TierPolicy YAML (tiers, prices, tenants)")
	fl.StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(allocateFormats, ", "))
	return cmd
}

func runAllocate(ctx context.Context, clusterFile, policyFile string, claimPaths []string) (*plan.Result, error) {
	cluster, err := plan.LoadCluster(clusterFile)
	if err != nil {
		return nil, err
	}
	policy, err := plan.LoadPolicy(policyFile)
	if err != nil {
		return nil, err
	}
	claims, err := plan.LoadClaims(claimPaths...)
	if err != nil {
		return nil, err
	}
	in := plan.Input{Policy: policy, Claims: claims}
	for _, spec := range cluster.Nodes {
		m, err := discover(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", spec.Name, err)
		}
		in.Nodes = append(in.Nodes, tslices.Node{Name: spec.Name, Labels: spec.Labels, Machine: m})
	}
	return plan.Run(ctx, in)
}

// discover reads a node's machine, first enabling MIG when asked. MIG mode
// is only changed on fake machines: this command never reconfigures real GPUs.
func discover(ctx context.Context, spec plan.NodeSpec) (inventory.Machine, error) {
	if spec.MIGEnabled && !nvgpu.IsFake(spec.Machine) {
		return inventory.Machine{}, fmt.Errorf("migEnabled: only allowed for fake machines (%s<name>), not %q", nvgpu.FakePrefix, spec.Machine)
	}
	gpus, err := nvgpu.New(ctx, nvgpu.Options{Machine: spec.Machine})
	if err != nil {
		return inventory.Machine{}, err
	}
	defer gpus.Close()
	if spec.MIGEnabled {
		return nvgpu.EnableMIG(ctx, gpus)
	}
	return gpus.Machine(ctx)
}
