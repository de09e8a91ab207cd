package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// metricsCluster is StandardPolicy with a tenant "research" (namespace
// lab) on three nodes: "train" (2 H200 whole), "infer" (a MIG DGX H200)
// and "dev" (4 L4 time-sliced, a tenant slot each for research and the
// open tenant).
func metricsCluster(t *testing.T) (*v1alpha1.TierPolicy, []*resourceapi.ResourceSlice, *allocator.Cluster) {
	t.Helper()
	policy := tierratest.StandardPolicy()
	policy.Spec.Tenants = []v1alpha1.Tenant{{
		Name:              "research",
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.TenantLabel: "research"}},
		AllowedTiers:      []string{v1alpha1.TierTraining, v1alpha1.TierInference, v1alpha1.TierDev},
	}}
	require.Empty(t, policy.Validate())
	nodes := []slices.Node{
		{Name: "train", Labels: map[string]string{"tierra.dev/pool": "training"}, Machine: tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i) })},
		{Name: "infer", Machine: tierratest.DGXH200(true)},
		{Name: "dev", Machine: tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i) })},
	}
	var rs []*resourceapi.ResourceSlice
	for _, n := range nodes {
		dr, err := slices.Build(n, policy)
		require.NoError(t, err)
		rs = append(rs, slices.ResourceSlices(n.Name, dr)...)
	}
	for _, s := range rs {
		s.UID = types.UID(s.Name) // score.Inventory keys slices by UID, as the apiserver sets it
	}
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	return policy, rs, allocator.NewCluster(rs, classes...)
}

func TestMetricsOfTiersNodesPendingAndCost(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	policy, rs, cluster := metricsCluster(t)
	now := time.Unix(10_000, 0)
	created := func(c *resourceapi.ResourceClaim, ago time.Duration) *resourceapi.ResourceClaim {
		c.CreationTimestamp = metav1.NewTime(now.Add(-ago))
		return c
	}
	train, dev := tiers.ClassName(v1alpha1.TierTraining), tiers.ClassName(v1alpha1.TierDev)
	allocated := []struct {
		node  string
		claim *resourceapi.ResourceClaim
	}{
		{"train", tierratest.MakeClaim("t1", "lab").Request("gpu", train).Obj()},
		{"infer", tierratest.MakeClaim("m1", "lab").Request("gpu", tiers.ClassName(v1alpha1.TierInference)).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile.startsWith("3g.")`).Obj()},
		{"infer", tierratest.MakeClaim("m2", "lab").Request("gpu", tiers.ClassName(v1alpha1.TierInference)).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj()},
		{"dev", tierratest.MakeClaim("s1", "web").Request("gpu", dev).Capacity(slices.CapCompute, "250").Obj()},
		{"dev", tierratest.MakeClaim("s2", "web").Request("gpu", dev).Capacity(slices.CapCompute, "500").Obj()},
	}
	var claims []*resourceapi.ResourceClaim
	for _, a := range allocated {
		alloc, err := cluster.Try(ctx, a.node, a.claim)
		require.NoError(t, err)
		require.NotNil(t, alloc, a.claim.Name)
		a.claim.Status.Allocation = alloc
		cluster.Record(a.claim, alloc)
		claims = append(claims, created(a.claim, time.Hour))
	}
	require.Equal(t, claims[3].Status.Allocation.Devices.Results[0].Device, claims[4].Status.Allocation.Devices.Results[0].Device,
		"both shares on one slot of the first L4")
	claims = append(claims,
		created(tierratest.MakeClaim("p1", "lab").Request("gpu", train).Count(2).Obj(), 90*time.Second),
		created(tierratest.MakeClaim("p2", "web").Request("gpu", dev).Capacity(slices.CapCompute, "600").Obj(), 30*time.Second),
		created(tierratest.MakeClaim("p3", "web").Request("gpu", tiers.ClassGPU).Obj(), 10*time.Second),
		created(tierratest.MakeClaim("p5", "lab").Request("gpu", tiers.ClassName(v1alpha1.TierInference)).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj(), 40*time.Second),
		created(tierratest.MakeClaim("p4", "web").Request("gpu", dev).Count(5).Capacity(slices.CapCompute, "100").Obj(), 20*time.Second),
		created(tierratest.MakeClaim("other", "web").Request("gpu", "other-driver.example.com").Obj(), time.Hour),
	)
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	snap := observeMetrics(MetricsInput{
		Policy: policy, Slices: rs, Claims: claims, Classes: classes, Now: now,
		Namespaces: map[string]map[string]string{"lab": {v1alpha1.TenantLabel: "research"}, "web": {}},
	}, newStrandedModel())

	assert.Equal(t, []metrics.TierSample{
		{Tier: "training", YieldRatio: 0.5, OldestPendingSeconds: 90},
		{Tier: "inference", YieldRatio: 0.625 / 8, OldestPendingSeconds: 40},
		{Tier: "dev", YieldRatio: 0.75 / 4, OldestPendingSeconds: 30},
		{Tier: "", OldestPendingSeconds: 10},
	}, snap.Tiers)
	nodes := map[string]metrics.TierNodeSample{}
	for _, n := range snap.Nodes {
		nodes[n.Tier+"/"+n.Node] = n
	}
	require.Len(t, nodes, 3)
	// Training's typical claims: 1 GPU (t1) and 2 GPUs (p1), half each; the
	// free H200 serves the first, not the second: half of it is stranded.
	assert.Equal(t, metrics.TierNodeSample{Tier: "training", Node: "train", GPUs: 2, AllocatedGPUs: 1, StrandedGPUs: 0.5, HasStranded: true}, nodes["training/train"])
	// Inference's typical claims: a 3g slice (a third) and a 1g slice (two
	// thirds: one allocated, one pending, its profile predicted by FirstFit
	// from its selector). The allocated two share the first H200, whose
	// three free memory slices no 3g placement can use any more: 3/8 of a
	// GPU for a third of the claims.
	infer := nodes["inference/infer"]
	assert.Equal(t, 8.0, infer.GPUs)
	assert.InDelta(t, 0.625, infer.AllocatedGPUs, 1e-9)
	assert.True(t, infer.HasStranded)
	assert.InDelta(t, 3.0/8/3, infer.StrandedGPUs, 1e-9)
	assert.InDelta(t, wholeNodeFrag(t, rs, "infer", claims[:4], []score.Typical{{Milli: 500, Num: 1}, {Milli: 125, Num: 1, Weight: 2}}),
		infer.StrandedGPUs, 1e-9, "one tier's devices of a node, split out, measure as the whole node does")
	// Dev's typical claims: one share of 250, 500 or 600 milli-GPU, or five
	// of 100, a quarter each. The first L4 has 250 left, which only the
	// first can use; the other three are free. Five shares fit on no node
	// of four GPUs, so for them all 3.25 idle GPUs are stranded (each GPU
	// counted once, not once per tenant slot).
	d := nodes["dev/dev"]
	assert.Equal(t, 4.0, d.GPUs)
	assert.InDelta(t, 0.75, d.AllocatedGPUs, 1e-9)
	assert.True(t, d.HasStranded)
	assert.InDelta(t, (0+0.25+0.25+3.25)/4, d.StrandedGPUs, 1e-9)

	assert.Equal(t, []metrics.PendingSample{
		{Tier: "", Namespace: "web", Claims: 1},
		{Tier: "dev", Namespace: "web", Claims: 2},
		{Tier: "inference", Namespace: "lab", Claims: 1},
		{Tier: "training", Namespace: "lab", Claims: 1},
	}, snap.Pending)
	require.Len(t, snap.Costs, 3)
	want := []metrics.CostSample{
		{Tenant: "", Namespace: "web", Tier: "dev", DollarsPerHour: 0.75 * 0.80},
		{Tenant: "research", Namespace: "lab", Tier: "inference", DollarsPerHour: 3.50/2 + 3.50/8},
		{Tenant: "research", Namespace: "lab", Tier: "training", DollarsPerHour: 3.50},
	}
	for i, w := range want {
		got := snap.Costs[i]
		assert.Equal(t, []string{w.Tenant, w.Namespace, w.Tier}, []string{got.Tenant, got.Namespace, got.Tier})
		assert.InDelta(t, w.DollarsPerHour, got.DollarsPerHour, 1e-9, "%s/%s", w.Namespace, w.Tier)
	}
}

// wholeNodeFrag is pkg/score's fragmentation of all of a node's devices.
func wholeNodeFrag(t *testing.T, rs []*resourceapi.ResourceSlice, node string, allocated []*resourceapi.ResourceClaim, typical []score.Typical) float64 {
	t.Helper()
	table := score.NewTable(nil)
	nd := score.NewInventory(driverName, table).Nodes(rs)[node]
	require.NotNil(t, nd)
	shapes, _ := table.Snapshot()
	state := (&allocator.Cluster{Allocated: allocated}).State()
	n := score.NodeOf(score.Host{}, nd, shapes, &state)
	return n.Frag(score.NewClasses(score.MostPopular(typical), shapes), shapes, nil) / slices.ComputeUnitsPerGPU
}

// With no claims at all there is nothing to measure against: no idle
// share is stranded, and the GPUs are reported all the same.
func TestMetricsWithoutClaims(t *testing.T) {
	policy, rs, _ := metricsCluster(t)
	snap := observeMetrics(MetricsInput{Policy: policy, Slices: rs, Now: time.Unix(0, 0)}, newStrandedModel())
	require.Len(t, snap.Nodes, 3)
	for _, n := range snap.Nodes {
		assert.Zero(t, n.AllocatedGPUs, n.Node)
		assert.Zero(t, n.StrandedGPUs, n.Node)
	}
	assert.Empty(t, snap.Pending)
	assert.Empty(t, snap.Costs)
	assert.Len(t, snap.Tiers, 3)
}

func TestRequestShare(t *testing.T) {
	_, rs, _ := metricsCluster(t)
	shared := sharedShapes(rs)[v1alpha1.TierDev]
	require.NotNil(t, shared, "the dev tier publishes shared L4s")
	tests := map[string]struct {
		claim *resourceapi.ResourceClaim
		shape *score.Shape
		want  int64
	}{
		"asked compute":                {tierratest.MakeClaim("a", "ns").Request("gpu", "c").Capacity(slices.CapCompute, "300").Obj(), shared, 300},
		"default compute":              {tierratest.MakeClaim("a", "ns").Request("gpu", "c").Obj(), shared, 125},
		"memory only, compute default": {tierratest.MakeClaim("a", "ns").Request("gpu", "c").Capacity(slices.CapMemory, "1Gi").Obj(), shared, 125},
		"whole GPU tier":               {tierratest.MakeClaim("a", "ns").Request("gpu", "c").Obj(), nil, 1000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, requestShare(tc.claim.Spec.Devices.Requests[0].Exactly, tc.shape))
		})
	}
}

// ControllerMetrics reads the informers: nothing before they synced, then
// the claims' cost under the tenant the namespace's labels name.
func TestControllerMetricsFromCaches(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	policy, rs, _ := metricsCluster(t)
	policy.APIVersion, policy.Kind = v1alpha1.SchemeGroupVersion.String(), v1alpha1.TierPolicyKind
	policy.Name = "default"
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(policy)
	require.NoError(t, err)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.TierPolicyResource: "TierPolicyList"}, &unstructured.Unstructured{Object: u})
	claim := tierratest.MakeClaim("t1", "lab").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj()
	claim.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
		Results: []resourceapi.DeviceRequestAllocationResult{{Request: "gpu", Driver: driverName, Pool: "train", Device: "gpu-1"}},
	}}
	objs := []runtime.Object{claim, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lab", Labels: map[string]string{v1alpha1.TenantLabel: "research"}}}}
	for _, s := range rs {
		objs = append(objs, s)
	}
	c := New(Config{MetricsAddr: "127.0.0.1:0"}, fake.NewClientset(objs...), dyn)
	snap, err := c.ControllerMetrics()
	require.NoError(t, err)
	assert.Empty(t, snap.Nodes, "nothing before the caches synced")
	require.NoError(t, c.startInformers(ctx))
	snap, err = c.ControllerMetrics()
	require.NoError(t, err)
	assert.Len(t, snap.Nodes, 3)
	require.Len(t, snap.Costs, 1)
	assert.Equal(t, metrics.CostSample{Tenant: "research", Namespace: "lab", Tier: "training", DollarsPerHour: 3.5}, snap.Costs[0])
}
