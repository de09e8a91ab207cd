package prepare_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const node = "node-1"

// env is one fake dgxh200 node with real checkpoint and CDI directories
// and the scheduler's allocator over the slices it publishes.
type env struct {
	ctx     context.Context
	gpus    *nvgpu.Fake
	store   *checkpoint.Store
	cdi     *cdi.Writer
	cluster *allocator.Cluster
	prep    *prepare.Preparer
}

type namespaces map[string]map[string]string

func (n namespaces) NamespaceLabels(_ context.Context, ns string) (map[string]string, error) {
	return n[ns], nil
}

// newEnv labels the node for tier (inference: MIG on GPUs 4-7, whole GPUs
// 0-3; dev: time-sliced shared GPUs).
func newEnv(t *testing.T, tier string, ns namespaces, mutate ...func(*prepare.Options)) *env {
	return newEnvPolicy(t, tier, v1alpha1.DefaultTierPolicy(), ns, mutate...)
}

// newEnvPolicy is newEnv under another policy.
func newEnvPolicy(t *testing.T, tier string, policy *v1alpha1.TierPolicy, ns namespaces, mutate ...func(*prepare.Options)) *env {
	_, ctx := ktesting.NewTestContext(t)
	gpus, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	require.NoError(t, err)
	m, err := gpus.Machine(ctx)
	require.NoError(t, err)
	if tier == v1alpha1.TierInference {
		for _, g := range m.GPUs[4:] {
			require.NoError(t, gpus.SetMIGMode(ctx, g.UUID, true))
		}
		m, err = gpus.Machine(ctx)
		require.NoError(t, err)
	}
	dr, err := slices.Build(slices.Node{Name: node, Labels: map[string]string{v1alpha1.NodeTierLabel: tier}, Machine: m}, policy)
	require.NoError(t, err)
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	inv, err := prepare.NewNodePool(v1alpha1.DriverName, node, dr, m)
	require.NoError(t, err)
	store, _, err := checkpoint.Open(ctx, checkpoint.Options{Dir: t.TempDir(), BootID: "boot-1"})
	require.NoError(t, err)
	w, err := cdi.New(cdi.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	opts := prepare.Options{NodePool: inv, Hardware: gpus, Store: store, CDI: w, Caps: gpus, Policy: policy, Namespaces: ns}
	for _, m := range mutate {
		m(&opts)
	}
	p, err := prepare.New(opts)
	require.NoError(t, err)
	return &env{ctx: ctx, gpus: gpus, store: store, cdi: w, cluster: allocator.NewCluster(slices.ResourceSlices(node, dr), classes...), prep: p}
}

// allocate runs the scheduler's allocator for the claim and sets its allocation.
func (e *env) allocate(t *testing.T, claim *resourceapi.ResourceClaim) *resourceapi.ResourceClaim {
	result, err := e.cluster.AllocateResult(e.ctx, node, claim)
	require.NoError(t, err)
	require.NotNil(t, result, "claim %s does not fit", claim.Name)
	claim.Status.Allocation = result
	return claim
}

func (e *env) gpu(t *testing.T, uuid string) inventory.GPU {
	m, err := e.gpus.Machine(e.ctx)
	require.NoError(t, err)
	g, ok := m.GPU(uuid)
	require.True(t, ok)
	return g
}

// assertNothingPrepared checks that no record, no CDI spec and no MIG
// instance exists.
func (e *env) assertNothingPrepared(t *testing.T) {
	require.Empty(t, e.store.List(), "checkpoint records")
	specs, err := e.cdi.List()
	require.NoError(t, err)
	require.Empty(t, specs, "CDI specs")
	m, err := e.gpus.Machine(e.ctx)
	require.NoError(t, err)
	for _, g := range m.GPUs {
		if g.MIG != nil {
			require.Empty(t, g.MIG.Instances, "MIG instances on GPU %d", g.Index)
		}
		require.Equal(t, inventory.ComputeModeDefault, g.ComputeMode, "compute mode of GPU %d", g.Index)
	}
}
