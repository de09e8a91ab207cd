// Command tierra is Tierra's operator CLI: inspect a node's GPUs, replay a
// cluster trace through the scheduler's allocator (sim), and run benchmarks.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// subcommands is filled by each subcommand file's init, so adding a command
// never touches this file.
var subcommands []func() *cobra.Command

func main() {
	root := &cobra.Command{
		Use:   "tierra",
		Short: "Tierra GPU DRA driver: inspect GPUs, simulate placement, benchmark",
		Long: `tierra is the operator CLI of the Tierra DRA driver (gpu.tierra.dev).

It reads a node's GPU inventory (real NVML or a fake machine), and replays
GPU workload traces through the Kubernetes scheduler's own DRA allocator.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tierra:", err)
		os.Exit(1)
	}
}
