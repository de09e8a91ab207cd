package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/nodesim"
)

// Base is what a test suite's stack starts the same way on a fresh
// control plane: its clients, the built binaries, the chart's objects and
// a running tierra-controller whose classes are applied.
type Base struct {
	Clientset kubernetes.Interface
	Apply     *manifests.Applier
	Bins      Binaries
}

// StartBase builds the binaries into dir/bin, installs the chart's objects
// into c, runs tierra-controller (metrics on metricsAddr, "" for none) and
// waits for its classes. It logs to stderr.
func StartBase(ctx context.Context, c *cluster.Cluster, dir, metricsAddr string) (Base, error) {
	var b Base
	var err error
	if b.Clientset, err = c.Clientset(); err != nil {
		return Base{}, err
	}
	rest, err := c.RESTConfig()
	if err != nil {
		return Base{}, err
	}
	if b.Apply, err = manifests.New(rest); err != nil {
		return Base{}, err
	}
	if b.Bins, err = Build(ctx, filepath.Join(dir, "bin"), os.Stderr); err != nil {
		return Base{}, err
	}
	if err := Install(ctx, c); err != nil {
		return Base{}, err
	}
	if err := c.Run("tierra-controller", b.Bins.Controller, ControllerArgs(c, metricsAddr)...); err != nil {
		return Base{}, err
	}
	if err := WaitClasses(ctx, b.Clientset); err != nil {
		return Base{}, err
	}
	return b, nil
}

// StartNode starts the simulated node s of c, its state in dir/n<i>, its
// plugin the built one serving /metrics on a loopback port of its own. It
// logs to stderr.
func (b Base) StartNode(ctx context.Context, c *cluster.Cluster, s plan.NodeSpec, dir string, i int) (*nodesim.Node, error) {
	return nodesim.Start(ctx, nodesim.Options{
		Name: s.Name, Machine: s.Machine, MIGEnabled: s.MIGEnabled, Labels: s.Labels,
		Kubeconfig: c.Kubeconfig(), PluginBinary: b.Bins.Plugin, Dir: filepath.Join(dir, fmt.Sprintf("n%d", i)),
		PluginArgs: b.Bins.PluginArgs(), Images: b.Bins.Images(), Log: os.Stderr, MetricsAddress: "127.0.0.1:0",
	})
}
