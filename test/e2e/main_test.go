package e2e

import (
	"context"
	"testing"

	"k8s.io/client-go/kubernetes"

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
	stack.Main(m, "e2e", cluster.Options{Kwok: true}, setUp)
}

// setUp installs the policy, runs the controller and the demo's GPU nodes
// and one kwok node without GPUs.
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
	if err := stack.AddKwokNode(ctx, env.cs, "cpu-0"); err != nil {
		return nil, err
	}
	nodes, err := base.StartNodes(ctx, c, dir, nil)
	env.nodes = map[string]*nodesim.Node{}
	for _, n := range nodes {
		env.nodes[n.Name()] = n
	}
	return func(int) error { return stack.StopNodes(nodes) }, err
}
