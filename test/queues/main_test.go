package queues

import (
	"context"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
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
	if _, err := stack.KueueBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "queues setup:", err)
		os.Exit(1)
	}
	stack.Main(m, "queues", cluster.Options{}, setUp)
}

// setUp installs Tierra (policy, controller, classes), starts the GPU
// nodes and Kueue, and applies the queues.
func setUp(ctx context.Context, c *cluster.Cluster, dir string) (func(int) error, error) {
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
	nodes, err := base.StartNodes(ctx, c, dir, func(name string) bool { return gpuNodes[name] })
	after := func(code int) error {
		if code != 0 {
			// The state dir goes with the test: keep Kueue's word on what it did.
			if log, err := os.ReadFile(c.LogFile("kueue")); err == nil {
				fmt.Fprintf(os.Stderr, "kueue log (last 16 KiB):\n%s\n", log[max(0, len(log)-16<<10):])
			}
		}
		return stack.StopNodes(nodes)
	}
	if err != nil {
		return after, err
	}
	return after, stack.StartKueue(ctx, c, env.apply)
}
