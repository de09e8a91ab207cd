package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func init() { subcommands = append(subcommands, newInspectCommand) }

var inspectFormats = []string{"table", "json", "yaml"}

// inspectOptions are inspect's flags.
type inspectOptions struct {
	machine, output string
	// stateDir is the plugin's state directory, whose health record is
	// shown; "" shows none. events is how many events per GPU the table
	// shows.
	stateDir string
	events   int
}

func newInspectCommand() *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the node's GPUs as the driver sees them: topology, MIG profiles and placements",
		Long: `inspect discovers the GPUs of this node through NVML (or of a fake machine)
and prints what the driver publishes from: product, memory, compute
capability, PCI bus and PCIe root, NUMA node, NVLink domain, MIG mode,
compute mode, and every MIG profile with the placements NVML reports.

With --state-dir (the kubelet plugin's, /var/lib/tierra by default there)
it also shows each GPU's health as the plugin last recorded it: Healthy,
Tainted or Lost, the taints on its devices, when they clear, and its last
events (XIDs, ECC errors, lost GPUs) with what the TierPolicy's health
section made of them.

Fake machines (--machine fake:<name>): ` + strings.Join(nvgpu.FakeMachines(), ", ") + `.`,
		Example: `  tierra inspect
  tierra inspect --state-dir /var/lib/tierra
  tierra inspect --machine fake:dgxh200 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInspect(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.machine, "machine", "", "machine to inspect: empty for this node's GPUs (real NVML), or "+
		nvgpu.FakePrefix+"<name> with name one of "+strings.Join(nvgpu.FakeMachines(), ", "))
	fl.StringVarP(&o.output, "output", "o", "table", "output format: "+strings.Join(inspectFormats, ", "))
	fl.StringVar(&o.stateDir, "state-dir", "", "the kubelet plugin's state directory: show the GPUs' health it recorded there ("+health.StatusFile+")")
	fl.IntVar(&o.events, "events", 5, "with --state-dir, the table shows this many of each GPU's last events")
	return cmd
}

func runInspect(cmd *cobra.Command, o inspectOptions) error {
	machine, output := o.machine, o.output
	if !slices.Contains(inspectFormats, output) {
		return fmt.Errorf("--output %q: want one of %s", output, strings.Join(inspectFormats, ", "))
	}
	if o.events < 0 {
		return fmt.Errorf("--events %d: want 0 or more", o.events)
	}
	var status *health.Status
	if o.stateDir != "" {
		s, err := health.ReadStatus(o.stateDir)
		if errors.Is(err, health.ErrNoStatus) {
			return fmt.Errorf("--state-dir: %w (is it the kubelet plugin's --state-dir, and does the plugin watch GPU events?)", err)
		}
		if err != nil {
			return fmt.Errorf("--state-dir: %w", err)
		}
		status = &s
	}
	if _, err := nvgpu.ParseMachine(machine); err != nil {
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
	out := inspected{Machine: m}
	if status != nil {
		r := health.Report(m, *status)
		out.Health = &r
	}
	return writeInspected(cmd.OutOrStdout(), out, output, o.events)
}

// inspected is what inspect prints: the machine and, with --state-dir, its
// GPUs' health.
type inspected struct {
	inventory.Machine
	Health *health.NodeReport `json:"health,omitempty"`
}

func writeInspected(w io.Writer, out inspected, output string, events int) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "yaml":
		b, err := yaml.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		if err := inventory.WriteTable(w, out.Machine); err != nil || out.Health == nil {
			return err
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		return out.Health.WriteTable(w, time.Now(), events)
	}
}
