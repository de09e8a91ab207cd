// Command tierra-demo runs Tierra's demo on the local control plane: `up`
// starts (or reuses) the cluster of package cluster, installs the TierPolicy,
// runs tierra-controller and the GPU nodes of demo/cluster.yaml (simulated by
// package nodesim around the real kubelet plugin), applies demo/scenarios,
// and prints where every pod's GPUs landed, what they cost, and the yield.
// Everything keeps running; `down` stops it all.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/cluster"
)

const usage = `tierra-demo runs Tierra on a local control plane with fake GPUs.

  up     start the control plane (or reuse the running one), tierra-controller
         and the GPU nodes of demo/cluster.yaml, apply demo/scenarios, and print
         pod -> tier -> node -> devices -> cost/hour and the yield per tier.
         Everything stays up; the kubeconfig path is printed.
  down   stop everything up started (same as tierra-cluster down).

Usage: tierra-demo [flags] up|down

Flags:
`

func main() {
	fs := flag.NewFlagSet("tierra-demo", flag.ExitOnError)
	var o options
	fs.StringVar(&o.stateDir, "state-dir", "", "cluster state dir (default <repo>/_output/cluster)")
	fs.StringVar(&o.binDir, "bin-dir", "", "where the binaries are built (default <repo>/_output/bin)")
	fs.DurationVar(&o.wait, "wait", 3*time.Minute, "how long to wait for the demo's pods to run")
	klog.InitFlags(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch fs.Arg(0) {
	case "up":
		err = up(ctx, o)
	case "down":
		err = down(o)
	default:
		err = fmt.Errorf("unknown command %q (want up or down)", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tierra-demo:", err)
		os.Exit(1)
	}
}

type options struct {
	stateDir, binDir string
	wait             time.Duration
}

func down(o options) error {
	c, err := cluster.Load(o.stateDir)
	if err != nil {
		fmt.Println("demo already down")
		return nil
	}
	if err := c.Stop(); err != nil {
		return err
	}
	fmt.Println("demo down: controller, GPU nodes and control plane stopped")
	return nil
}
