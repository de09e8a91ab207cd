package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/nodesim"
	"github.com/tierra-gpu/tierra/test/stack"
)

// env is the stack every scenario shares.
var env struct {
	cluster *cluster.Cluster
	cs      kubernetes.Interface
	apply   *manifests.Applier
	nodes   map[string]*nodesim.Node
	root    string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (_ int, finalErr error) {
	ctx := klog.NewContext(context.Background(), klog.Background())
	// Not a t.TempDir: unix socket paths must stay short.
	dir, err := os.MkdirTemp("", "te2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "c"), StopWithParent: true, Kwok: true, Log: os.Stderr})
	if err != nil {
		return 0, err
	}
	defer func() { finalErr = errors.Join(finalErr, c.Stop()) }()
	if err := setUp(ctx, c, dir); err != nil {
		return 0, err
	}
	defer func() {
		for _, n := range env.nodes {
			finalErr = errors.Join(finalErr, n.Stop())
		}
	}()
	fmt.Fprintf(os.Stderr, "stack up in %s\n", time.Since(t0).Round(time.Millisecond))
	return m.Run(), nil
}

// setUp installs the policy, runs the controller and the demo's GPU nodes
// and one kwok node without GPUs.
func setUp(ctx context.Context, c *cluster.Cluster, dir string) error {
	var err error
	env.cluster = c
	if env.root, err = cluster.RepoRoot(); err != nil {
		return err
	}
	base, err := stack.StartBase(ctx, c, dir, "")
	if err != nil {
		return err
	}
	env.cs, env.apply = base.Clientset, base.Apply
	if err := stack.AddKwokNode(ctx, env.cs, "cpu-0"); err != nil {
		return err
	}
	specs, err := stack.Nodes()
	if err != nil {
		return err
	}
	if err := stack.EnsurePluginNamespace(ctx, env.cs); err != nil {
		return err
	}
	env.nodes = map[string]*nodesim.Node{}
	for i, s := range specs {
		n, err := base.StartNode(ctx, c, s, dir, i)
		if err != nil {
			return err
		}
		env.nodes[s.Name] = n
	}
	return nil
}
