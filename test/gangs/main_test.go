package gangs

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
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
	stack.Main(m, "gangs", cluster.Options{FeatureGates: featureGates, RuntimeConfig: runtimeConfig}, setUp)
}

// setUp installs Tierra and starts the training node alone.
func setUp(ctx context.Context, c *cluster.Cluster, dir string) (func(int) error, error) {
	var err error
	if env.root, err = cluster.RepoRoot(); err != nil {
		return nil, err
	}
	base, err := stack.StartBase(ctx, c, dir, "")
	if err != nil {
		return nil, err
	}
	env.cs, env.apply = base.Clientset, base.Apply
	nodes, err := base.StartNodes(ctx, c, dir, func(name string) bool { return name == trainNode })
	after := func(int) error { return stack.StopNodes(nodes) }
	if err == nil && len(nodes) == 0 {
		err = fmt.Errorf("%s is not in %s", trainNode, stack.ClusterFile)
	}
	return after, err
}
