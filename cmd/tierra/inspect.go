package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func init() { subcommands = append(subcommands, newInspectCommand) }

var inspectFormats = []string{"table", "json", "yaml"}

func newInspectCommand() *cobra.Command {
	var machine, output string
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the node's GPUs as the driver sees them: topology, MIG profiles and placements",
		Long: `inspect discovers the GPUs of this node through NVML (or of a fake machine)
and prints what the driver publishes from: product, memory, compute
capability, PCI bus and PCIe root, NUMA node, NVLink domain, MIG mode,
compute mode, and every MIG profile with the placements NVML reports.

Fake machines (--machine fake:<name>): ` + strings.Join(nvgpu.FakeMachines(), ", ") + `.`,
		Example: `  tierra inspect
  tierra inspect --machine fake:dgxh200 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInspect(cmd, machine, output)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&machine, "machine", "", "machine to inspect: empty for this node's GPUs (real NVML), or "+
		nvgpu.FakePrefix+"<name> with name one of "+strings.Join(nvgpu.FakeMachines(), ", "))
	fl.StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(inspectFormats, ", "))
	return cmd
}

func runInspect(cmd *cobra.Command, machine, output string) error {
	if !slices.Contains(inspectFormats, output) {
		return fmt.Errorf("--output %q: want one of %s", output, strings.Join(inspectFormats, ", "))
	}
	if name, ok := strings.CutPrefix(machine, nvgpu.FakePrefix); machine != "" && (!ok || !slices.Contains(nvgpu.FakeMachines(), name)) {
		return fmt.Errorf("--machine %q: want empty (this node's GPUs through NVML) or %s<name> with name one of %s",
			machine, nvgpu.FakePrefix, strings.Join(nvgpu.FakeMachines(), ", "))
	}
	ctx := cmd.Context()
	gpus, err := nvgpu.New(ctx, nvgpu.Options{Machine: machine})
	if err != nil {
		return err // nvgpu's message already says what to do
	}
	defer gpus.Close()
	m, err := gpus.Machine(ctx)
	if err != nil {
		return fmt.Errorf("discover GPUs: %w", err)
	}
	return writeMachine(cmd.OutOrStdout(), m, output)
}

func writeMachine(w io.Writer, m inventory.Machine, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	case "yaml":
		b, err := yaml.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		return inventory.WriteTable(w, m)
	}
}
