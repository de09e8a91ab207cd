package gangs

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

// trainNode is the demo's training DGX: eight whole H200s.
const trainNode = "dgx-h200-train"

// Gang scheduling in 1.37.1: the GenericWorkload gate (beta, off by
// default) serves PodGroup and Workload and adds kube-scheduler's
// GangScheduling plugin; their API version is off by default too.
const (
	featureGates  = "GenericWorkload=true"
	runtimeConfig = "scheduling.k8s.io/v1beta1=true"
)

var env struct {
	cs    kubernetes.Interface
	apply *manifests.Applier
	root  string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gangs setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (_ int, finalErr error) {
	ctx := klog.NewContext(context.Background(), klog.Background())
	// Not a t.TempDir: unix socket paths must stay short.
	dir, err := os.MkdirTemp("", "tg-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{
		StateDir: filepath.Join(dir, "c"), StopWithParent: true, Log: os.Stderr,
		FeatureGates: featureGates, RuntimeConfig: runtimeConfig,
	})
	if err != nil {
		return 0, err
	}
	defer func() { finalErr = errors.Join(finalErr, c.Stop()) }()
	node, err := setUp(ctx, c, dir)
	if node != nil {
		defer func() { finalErr = errors.Join(finalErr, node.Stop()) }()
	}
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "stack with gang scheduling up in %s\n", time.Since(t0).Round(time.Millisecond))
	return m.Run(), nil
}

// setUp installs Tierra and starts the training node alone.
func setUp(ctx context.Context, c *cluster.Cluster, dir string) (*nodesim.Node, error) {
	var err error
	if env.root, err = cluster.RepoRoot(); err != nil {
		return nil, err
	}
	base, err := stack.StartBase(ctx, c, dir, "")
	if err != nil {
		return nil, err
	}
	env.cs, env.apply = base.Clientset, base.Apply
	specs, err := stack.Nodes()
	if err != nil {
		return nil, err
	}
	if err := stack.EnsurePluginNamespace(ctx, env.cs); err != nil {
		return nil, err
	}
	for i, s := range specs {
		if s.Name == trainNode {
			return base.StartNode(ctx, c, s, dir, i)
		}
	}
	return nil, fmt.Errorf("%s is not in %s", trainNode, stack.ClusterFile)
}
