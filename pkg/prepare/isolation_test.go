package prepare_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

var tenantNamespaces = namespaces{
	"team-a": {v1alpha1.TenantLabel: "research"},
	"team-b": {v1alpha1.TenantLabel: "product"},
	"ns":     nil,
}

// retier republishes the node under another tier label, as the plugin does
// when an admin relabels it, and gives the scheduler the new slices with
// nothing allocated: the shape it sees is new.
func (e *env) retier(t *testing.T, tier string) {
	m, err := e.gpus.Machine(e.ctx)
	require.NoError(t, err)
	policy := v1alpha1.DefaultTierPolicy()
	dr, err := slices.Build(slices.Node{Name: node, Labels: map[string]string{v1alpha1.NodeTierLabel: tier}, Machine: m}, policy)
	require.NoError(t, err)
	inv, err := prepare.NewNodePool(v1alpha1.DriverName, node, dr, m)
	require.NoError(t, err)
	e.prep.SetNodePool(inv, policy)
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	e.cluster = allocator.NewCluster(slices.ResourceSlices(node, dr), classes...)
}

// Re-tiering a node from dev to training republishes a time-sliced GPU as
// a whole device that looks free: another tenant's exclusive claim on it is
// refused, and the GPU's compute mode stays as research's claim needs it.
func TestPrepareRefusesAnotherTenantOnARetieredGPU(t *testing.T) {
	e := newEnv(t, v1alpha1.TierDev, tenantNamespaces)
	shared := e.allocate(t, tierratest.MakeClaim("notebook", "team-a").UID("uid-a").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Obj())
	_, err := e.prep.Prepare(e.ctx, shared)
	require.NoError(t, err)
	gpu := uuidOf(t, e, shared)

	e.retier(t, v1alpha1.TierTraining)
	whole := e.allocate(t, tierratest.MakeClaim("train", "ns").UID("uid-b").Request("gpu", tiers.ClassGPU).Obj())
	require.Equal(t, gpu, uuidOf(t, e, whole), "the scheduler hands out the same GPU")

	_, err = e.prep.Prepare(e.ctx, whole)
	require.ErrorIs(t, err, tenancy.ErrCrossTenant)
	for _, s := range []string{"ns/train", "team-a/notebook", `"research"`, "(open", gpu} {
		assert.ErrorContains(t, err, s)
	}
	assert.Equal(t, inventory.ComputeModeDefault, e.gpu(t, gpu).ComputeMode, "no ExclusiveProcess under research's claim")
	_, ok := e.store.Get("uid-b")
	assert.False(t, ok, "the refused claim left no record")

	// The same tenant cannot take the GPU whole under its own shares either.
	e.retier(t, v1alpha1.TierTraining)
	own := e.allocate(t, tierratest.MakeClaim("own", "team-a").UID("uid-c").Request("gpu", tiers.ClassGPU).Obj())
	require.Equal(t, gpu, uuidOf(t, e, own))
	_, err = e.prep.Prepare(e.ctx, own)
	require.ErrorIs(t, err, tenancy.ErrGPUBusy)

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-a"))
	_, err = e.prep.Prepare(e.ctx, whole)
	require.NoError(t, err, "the GPU serves the other tenant once research's claim ended")
	assert.Equal(t, inventory.ComputeModeExclusiveProcess, e.gpu(t, gpu).ComputeMode)
}

// A claim of a tier its tenant may not use is refused even when admission
// let it through (a plain class, an admin's own class).
func TestPrepareRefusesATierTheTenantMayNotClaim(t *testing.T) {
	e := newEnv(t, v1alpha1.TierTraining, tenantNamespaces)
	claim := e.allocate(t, tierratest.MakeClaim("sneaky", "team-b").UID("uid-b").Request("gpu", tiers.ClassGPU).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.ErrorIs(t, err, prepare.ErrTierNotAllowed)
	assert.ErrorContains(t, err, `tenant "product"`)
	assert.ErrorContains(t, err, "tier training")
	e.assertNothingPrepared(t)

	ok := e.allocate(t, tierratest.MakeClaim("train", "team-a").UID("uid-a").Request("gpu", tiers.ClassGPU).Obj())
	_, err = e.prep.Prepare(e.ctx, ok)
	require.NoError(t, err, "research may claim training")
}

// Namespaces of no tenant are one tenant, the open one: two of them share
// a time-sliced GPU (admission gives both the open slot), and neither
// passes for a named tenant by its name.
func TestPrepareOpenTenantShares(t *testing.T) {
	ns := namespaces{"research": nil, "scratch": nil, "team-a": {v1alpha1.TenantLabel: "research"}}
	e := newEnv(t, v1alpha1.TierDev, ns)
	class := tiers.ClassName(v1alpha1.TierDev)
	first := e.allocate(t, tierratest.MakeClaim("a", "research").UID("uid-1").Request("gpu", class).Obj())
	second := e.allocate(t, tierratest.MakeClaim("b", "scratch").UID("uid-2").Request("gpu", class).Obj())
	_, err := e.prep.Prepare(e.ctx, first)
	require.NoError(t, err)
	_, err = e.prep.Prepare(e.ctx, second)
	require.NoError(t, err, "two namespaces of no tenant share")
	rec, ok := e.store.Get("uid-1")
	require.True(t, ok)
	assert.Equal(t, tenancy.Open, rec.Tenant, "the namespace named research is not tenant research")

	third := e.allocate(t, tierratest.MakeClaim("c", "team-a").UID("uid-3").Request("gpu", class).Obj())
	require.Equal(t, uuidOf(t, e, first), uuidOf(t, e, third))
	_, err = e.prep.Prepare(e.ctx, third)
	require.ErrorIs(t, err, tenancy.ErrCrossTenant, "the real research tenant is not the open one")
}

// Two plugin processes on one state dir (a surge rollout) decide from the
// same records: the second refuses another tenant on a GPU the first
// time-slices, and MPS starts once and quits with the last claim of either.
func TestTwoPreparersOnOneStateDirSeeEachOthersRecords(t *testing.T) {
	runner := &sharing.FakeRunner{}
	mpsDir := t.TempDir()
	sharer := func(o *prepare.Options) {
		m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: mpsDir})
		require.NoError(t, err)
		o.Sharer = m
	}
	policy := tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS)
	e := newEnvPolicy(t, v1alpha1.TierDev, policy, tenantNamespaces, sharer, func(o *prepare.Options) { o.Locks = o.Store.(*checkpoint.Store) })
	other := e.secondPreparer(t, policy, tenantNamespaces, sharer)
	class := tiers.ClassName(v1alpha1.TierDev)
	a := e.allocate(t, tierratest.MakeClaim("a", "team-a").UID("uid-a").Request("gpu", class).Obj())
	b := e.allocate(t, tierratest.MakeClaim("b", "team-b").UID("uid-b").Request("gpu", class).Obj())
	c := e.allocate(t, tierratest.MakeClaim("c", "team-a").UID("uid-c").Request("gpu", class).Obj())
	require.Equal(t, uuidOf(t, e, a), uuidOf(t, e, b), "one shared GPU (the allocator sees no tenant slots without admission)")

	_, err := e.prep.Prepare(e.ctx, a)
	require.NoError(t, err)
	_, err = other.Prepare(e.ctx, b)
	require.ErrorIs(t, err, tenancy.ErrCrossTenant, "the second process sees the first one's record")
	_, err = other.Prepare(e.ctx, c)
	require.NoError(t, err)
	require.Len(t, runner.Commands(), 1, "one MPS daemon for the GPU, started by the first process")

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-a"))
	require.Len(t, runner.Commands(), 1, "claim c of the other process still uses the daemon")
	require.NoError(t, other.Unprepare(e.ctx, "uid-c"))
	cmds := runner.Commands()
	require.Len(t, cmds, 2)
	assert.Equal(t, "quit\n", cmds[1].Stdin, "the last claim of either process stops it")
	e.assertNothingPrepared(t)
}

// secondPreparer is another plugin process's Preparer on e's state dir and
// machine.
func (e *env) secondPreparer(t *testing.T, policy *v1alpha1.TierPolicy, ns namespaces, mutate ...func(*prepare.Options)) *prepare.Preparer {
	_, ctx := ktesting.NewTestContext(t)
	store, _, err := checkpoint.Open(ctx, checkpoint.Options{Dir: e.store.Dir(), BootID: e.store.BootID()})
	require.NoError(t, err)
	m, err := e.gpus.Machine(ctx)
	require.NoError(t, err)
	dr, err := slices.Build(slices.Node{Name: node, Labels: map[string]string{v1alpha1.NodeTierLabel: v1alpha1.TierDev}, Machine: m}, policy)
	require.NoError(t, err)
	inv, err := prepare.NewNodePool(v1alpha1.DriverName, node, dr, m)
	require.NoError(t, err)
	opts := prepare.Options{NodePool: inv, Hardware: e.gpus, Store: store, Locks: store, CDI: e.cdi, Caps: e.gpus, Policy: policy, Namespaces: ns}
	for _, m := range mutate {
		m(&opts)
	}
	p, err := prepare.New(opts)
	require.NoError(t, err)
	return p
}

// An admin-access (monitoring) claim gets device nodes only: no compute
// mode, no MIG instance, no sharing; and it holds the GPU against nobody.
func TestPrepareAdminAccessChangesNothing(t *testing.T) {
	runner := &sharing.FakeRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
	require.NoError(t, err)
	tests := map[string]struct {
		tier, class, selector string
	}{
		"whole GPU":  {tier: v1alpha1.TierTraining, class: tiers.ClassGPU},
		"MIG slice":  {tier: v1alpha1.TierInference, class: tiers.ClassMIG, selector: migSelector},
		"shared GPU": {tier: v1alpha1.TierDev, class: tiers.ClassName(v1alpha1.TierDev)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.tier, tenantNamespaces, func(o *prepare.Options) { o.Sharer = m })
			w := tierratest.MakeClaim("monitor", "team-b").UID("uid-mon").Request("gpu", tc.class)
			if tc.selector != "" {
				w = w.Selector(tc.selector)
			}
			claim := e.allocate(t, w.Obj())
			claim.Status.Allocation.Devices.Results[0].AdminAccess = ptr.To(true)
			before := len(runner.Commands())
			devs, err := e.prep.Prepare(e.ctx, claim)
			require.NoError(t, err, "admin access is not refused by tier or tenant")
			require.Len(t, devs, 1)
			require.NotEmpty(t, devs[0].CDIDeviceIDs)
			gpu := e.gpu(t, uuidOf(t, e, claim))
			assert.Equal(t, inventory.ComputeModeDefault, gpu.ComputeMode)
			if gpu.MIG != nil {
				assert.Empty(t, gpu.MIG.Instances, "no MIG instance for a monitoring claim")
			}
			assert.Len(t, runner.Commands(), before, "no MPS daemon or time-slice")

			require.NoError(t, e.prep.Unprepare(e.ctx, "uid-mon"))
			assert.Len(t, runner.Commands(), before, "unprepare changes nothing either")
			e.assertNothingPrepared(t)
		})
	}
}

// A claim cannot change a shared GPU's strategy, nor soft-share a MIG
// slice (which would start MPS or set a time-slice on the parent GPU).
func TestPrepareRefusesAStrategyTheDeviceCannotHave(t *testing.T) {
	const mps = `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS"}}`
	const ts = `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"TimeSlicing"}}`
	tests := map[string]struct {
		tier, class, selector, config string
		want                          []string
	}{
		"MPS on a time-sliced GPU": {tier: v1alpha1.TierDev, class: tiers.ClassName(v1alpha1.TierDev), config: mps,
			want: []string{"sharing.strategy MPS conflicts with the GPU's, TimeSlicing"}},
		"time-slicing on MIG": {tier: v1alpha1.TierInference, class: tiers.ClassMIG, selector: migSelector, config: ts,
			want: []string{"sharing.strategy TimeSlicing is not allowed on a MIG device", "Exclusive"}},
		"MPS on MIG": {tier: v1alpha1.TierInference, class: tiers.ClassMIG, selector: migSelector, config: mps,
			want: []string{"sharing.strategy MPS is not allowed on a MIG device"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			runner := &sharing.FakeRunner{}
			m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
			require.NoError(t, err)
			e := newEnv(t, tc.tier, nil, func(o *prepare.Options) { o.Sharer = m })
			w := tierratest.MakeClaim("bad", "ns").UID("uid-bad").Request("gpu", tc.class).Config(tc.config)
			if tc.selector != "" {
				w = w.Selector(tc.selector)
			}
			_, err = e.prep.Prepare(e.ctx, e.allocate(t, w.Obj()))
			require.ErrorIs(t, err, prepare.ErrInvalidConfig)
			for _, s := range tc.want {
				assert.ErrorContains(t, err, s)
			}
			assert.Empty(t, runner.Commands(), "nothing started")
			e.assertNothingPrepared(t)
		})
	}
}
