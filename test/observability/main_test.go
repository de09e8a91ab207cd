package observability

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/nodesim"
	"github.com/tierra-gpu/tierra/test/stack"
)

// The stack's jobs in the test Prometheus.
const (
	controllerJob = "tierra-controller"
	pluginJob     = "tierra-kubelet-plugin"
)

// simulatedNodes are the demo nodes the stack runs: whole H200s for
// training and time-sliced L4s for dev.
var simulatedNodes = []string{"dgx-h200-train", "l4-dev"}

// env is the stack the Prometheus tests share; it starts with the first
// test that needs it (the rules tests do not) and stops after the last.
var env struct {
	once    sync.Once
	err     error
	dir     string
	cluster *cluster.Cluster
	cs      kubernetes.Interface
	apply   *manifests.Applier
	root    string
	nodes   map[string]*nodesim.Node
	// metrics maps each node to its plugin's metrics address, the
	// target's instance label.
	metrics map[string]string
	prom    *stack.Prometheus
	stops   []func() error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := tearDown(); err != nil {
		fmt.Fprintln(os.Stderr, "observability teardown:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

func tearDown() error {
	var errs []error
	for _, stop := range slices.Backward(env.stops) {
		errs = append(errs, stop())
	}
	if env.dir != "" {
		errs = append(errs, os.RemoveAll(env.dir))
	}
	return errors.Join(errs...)
}

// stackUp starts (once) the local control plane, tierra-controller, the
// simulated nodes and a Prometheus scraping the controller and every
// node's plugin, with the chart's rules loaded.
func stackUp(t *testing.T) {
	t.Helper()
	env.once.Do(func() {
		t0 := time.Now()
		env.err = startStack(klog.NewContext(context.Background(), klog.Background()))
		fmt.Fprintf(os.Stderr, "observability stack up in %s (err: %v)\n", time.Since(t0).Round(time.Millisecond), env.err)
	})
	if env.err != nil {
		t.Fatalf("start the stack: %v", env.err)
	}
}

func startStack(ctx context.Context) error {
	var err error
	// Not a t.TempDir: unix socket paths must stay short.
	if env.dir, err = os.MkdirTemp("", "tobs-"); err != nil {
		return err
	}
	if env.root, err = cluster.RepoRoot(); err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(env.dir, "c"), StopWithParent: true, Kwok: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	env.cluster = c
	env.stops = append(env.stops, c.Stop)
	controllerAddr, err := loopbackAddr()
	if err != nil {
		return err
	}
	base, err := stack.StartBase(ctx, c, env.dir, controllerAddr)
	if err != nil {
		return err
	}
	env.cs, env.apply = base.Clientset, base.Apply
	pluginAddrs, err := startNodes(ctx, c, base)
	if err != nil {
		return err
	}
	env.prom, err = stack.StartPrometheusWith(ctx, stack.PrometheusOptions{
		Dir: filepath.Join(env.dir, "prom"),
		Targets: []stack.Target{
			{Job: controllerJob, Addrs: []string{controllerAddr}},
			{Job: pluginJob, Addrs: pluginAddrs},
		},
		RuleFiles: []string{filepath.Join(env.root, rulesDir, "tierra.rules.yaml")},
	})
	if err != nil {
		return err
	}
	env.stops = append(env.stops, env.prom.Stop)
	return nil
}

// startNodes starts the simulated nodes, each plugin serving /metrics on
// a loopback port of its own, and returns those addresses.
func startNodes(ctx context.Context, c *cluster.Cluster, base stack.Base) ([]string, error) {
	specs, err := stack.Nodes()
	if err != nil {
		return nil, err
	}
	if err := stack.EnsurePluginNamespace(ctx, env.cs); err != nil {
		return nil, err
	}
	env.nodes, env.metrics = map[string]*nodesim.Node{}, map[string]string{}
	var addrs []string
	for i, s := range specs {
		if !slices.Contains(simulatedNodes, s.Name) {
			continue
		}
		n, err := base.StartNode(ctx, c, s, env.dir, i)
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(n.MetricsURL())
		if err != nil {
			return nil, err
		}
		addr := u.Host
		env.nodes[s.Name], env.metrics[s.Name] = n, addr
		env.stops = append(env.stops, n.Stop)
		addrs = append(addrs, addr)
	}
	if len(env.nodes) != len(simulatedNodes) {
		return nil, fmt.Errorf("demo/cluster.yaml lacks some of %v", simulatedNodes)
	}
	return addrs, nil
}

func loopbackAddr() (string, error) {
	port, err := stack.FreeLoopbackPort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}
