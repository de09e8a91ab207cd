// Command tierra-cluster runs the local control plane of package
// test/cluster: `up` starts it in the background and prints its kubeconfig,
// `status` reports it, `down` stops it (safe to repeat).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tierra-gpu/tierra/test/cluster"
)

func main() {
	fs := flag.NewFlagSet("tierra-cluster", flag.ExitOnError)
	opts := cluster.Options{Log: os.Stderr}
	fs.StringVar(&opts.StateDir, "state-dir", "", "cluster state dir (default <repo>/_output/cluster)")
	fs.StringVar(&opts.BinDir, "bin-dir", "", "binaries (default $TIERRA_CLUSTER_BIN or <repo>/_output/bin)")
	fs.BoolVar(&opts.Kwok, "kwok", true, "also run kwok for nodes annotated "+cluster.KwokNodeAnnotation+"=fake")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tierra-cluster [flags] up|down|status")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, fs.Arg(0), opts); err != nil {
		fmt.Fprintln(os.Stderr, "tierra-cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, opts cluster.Options) error {
	switch cmd {
	case "up":
		return up(ctx, opts)
	case "down":
		return down(opts.StateDir)
	case "status":
		return status(opts.StateDir)
	default:
		return fmt.Errorf("unknown command %q (want up, down or status)", cmd)
	}
}

func up(ctx context.Context, opts cluster.Options) error {
	c, err := cluster.Start(ctx, opts)
	if errors.Is(err, cluster.ErrAlreadyRunning) {
		fmt.Println("already up;", err)
		return status(opts.StateDir)
	}
	if err != nil {
		return err
	}
	fmt.Printf("cluster up: %s\nexport KUBECONFIG=%s\nlogs: %s/logs\n", c.Server, c.Kubeconfig(), c.StateDir())
	return nil
}

func down(stateDir string) error {
	c, err := cluster.Load(stateDir)
	if errors.Is(err, cluster.ErrNotRunning) {
		fmt.Println("cluster already down")
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.Stop(); err != nil {
		return err
	}
	fmt.Println("cluster down")
	return nil
}

func status(stateDir string) error {
	c, err := cluster.Load(stateDir)
	if errors.Is(err, cluster.ErrNotRunning) {
		fmt.Println("down")
		return nil
	}
	if err != nil {
		return err
	}
	running := c.Running()
	if len(running) == 0 {
		fmt.Println("down (every recorded component has exited; logs in " + c.StateDir() + "/logs)")
		return nil
	}
	fmt.Printf("server %s, started %s\nkubeconfig %s\n", c.Server, c.StartedAt.Format("15:04:05"), c.Kubeconfig())
	for _, p := range c.Processes {
		state := "stopped"
		if contains(running, p.Name) {
			state = "running"
		}
		fmt.Printf("  %-24s pid %-8d %s\n", p.Name, p.PID, state)
	}
	if len(running) != len(c.Processes) {
		return fmt.Errorf("degraded: %d of %d components running (%s); run down then up",
			len(running), len(c.Processes), strings.Join(running, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
