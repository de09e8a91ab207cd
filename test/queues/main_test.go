package queues

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/nodesim"
	"github.com/tierra-gpu/tierra/test/stack"
)

// gpuNodes are the demo's nodes the queue tests need: the training DGX
// (eight whole H200s) and the inference DGX (MIG).
var gpuNodes = map[string]bool{"dgx-h200-train": true, "dgx-h200-infer": true}

// env is the stack every test shares.
var env struct {
	cluster *cluster.Cluster
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	apply   *manifests.Applier
	root    string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "queues setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (_ int, finalErr error) {
	ctx := klog.NewContext(context.Background(), klog.Background())
	if _, err := stack.KueueBinary(); err != nil {
		return 0, err
	}
	// Not a t.TempDir: unix socket paths must stay short.
	dir, err := os.MkdirTemp("", "tq-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "c"), StopWithParent: true, Log: os.Stderr})
	if err != nil {
		return 0, err
	}
	defer func() { finalErr = errors.Join(finalErr, c.Stop()) }()
	nodes, err := setUp(ctx, c, dir)
	defer func() {
		for _, n := range nodes {
			finalErr = errors.Join(finalErr, n.Stop())
		}
	}()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "stack with kueue up in %s\n", time.Since(t0).Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		// The state dir goes with the test: keep Kueue's word on what it did.
		if log, err := os.ReadFile(c.LogFile("kueue")); err == nil {
			fmt.Fprintf(os.Stderr, "kueue log (last 16 KiB):\n%s\n", log[max(0, len(log)-16<<10):])
		}
	}
	return code, nil
}

// setUp installs Tierra (policy, controller, classes), starts the GPU
// nodes and Kueue, and applies the queues.
func setUp(ctx context.Context, c *cluster.Cluster, dir string) ([]*nodesim.Node, error) {
	var err error
	env.cluster = c
	if env.root, err = cluster.RepoRoot(); err != nil {
		return nil, err
	}
	base, err := stack.StartBase(ctx, c, dir, "")
	if err != nil {
		return nil, err
	}
	env.cs, env.apply = base.Clientset, base.Apply
	rest, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	if env.dyn, err = dynamic.NewForConfig(rest); err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	specs, err := stack.Nodes()
	if err != nil {
		return nil, err
	}
	if err := stack.EnsurePluginNamespace(ctx, env.cs); err != nil {
		return nil, err
	}
	var nodes []*nodesim.Node
	for i, s := range specs {
		if !gpuNodes[s.Name] {
			continue
		}
		n, err := base.StartNode(ctx, c, s, dir, i)
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
	}
	if err := stack.StartKueue(ctx, c, env.apply); err != nil {
		return nodes, err
	}
	return nodes, nil
}
