package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const nodeName = "node-1"

// harness is the plugin started on a fake dgxh200 with a fake API server,
// spoken to over its real gRPC sockets as the kubelet does.
type harness struct {
	ctx     context.Context
	client  *fake.Clientset
	gpus    *nvgpu.Fake
	cfg     plugin.Config
	cluster *allocator.Cluster
	dra     drapb.DRAPluginClient
	reg     registerapi.RegistrationClient
	stop    func()
	runner  *sharing.FakeRunner
	// dynamic, when set, serves the TierPolicy instead of a fixed one.
	dynamic dynamic.Interface
	// hardware, when set, is the GPUs the plugin sees (wrapping gpus).
	hardware nvgpu.Interface
	// policy is the fixed TierPolicy; default v1alpha1.DefaultTierPolicy().
	policy *v1alpha1.TierPolicy
	// clock, when set, drives the plugin's periodic claim pass.
	clock clock.Clock
	// metrics, when set, is the registry the plugin's metrics go into; a
	// restart needs a new one.
	metrics *prometheus.Registry
	// driver is the plugin last started.
	driver *plugin.Driver
}

// withPolicy runs the plugin under another fixed TierPolicy.
func withPolicy(p *v1alpha1.TierPolicy) func(*harness) {
	return func(h *harness) { h.policy = p }
}

// namespace labels of the namespaces the tests use.
var namespaceLabels = map[string]map[string]string{
	"team-a": {v1alpha1.TenantLabel: "research"},
	"team-b": {v1alpha1.TenantLabel: "product"},
	"ns":     nil,
}

// startPlugin labels the node for tier (inference: MIG on GPUs 4-7 and
// whole GPUs 0-3; dev: time-sliced GPUs) and starts the plugin.
func startPlugin(t testing.TB, tier string, opts ...func(*harness)) *harness {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	gpus, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	require.NoError(t, err)
	if tier == v1alpha1.TierInference {
		m, err := gpus.Machine(ctx)
		require.NoError(t, err)
		for _, g := range m.GPUs[4:] {
			require.NoError(t, gpus.SetMIGMode(ctx, g.UUID, true))
		}
	}
	objs := []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{v1alpha1.NodeTierLabel: tier}}}}
	for name, labels := range namespaceLabels {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	}
	client := fake.NewClientset(objs...)
	client.PrependReactor("create", "resourceslices", generateName())
	client.PrependReactor("create", "events", generateName())

	h := &harness{ctx: ctx, client: client, gpus: gpus, runner: &sharing.FakeRunner{}, cfg: plugin.Config{
		NodeName: nodeName, StateDir: t.TempDir(), CDIDir: t.TempDir(), BootID: "boot-1",
		PluginDataDir: shortTempDir(t), RegistrarDir: shortTempDir(t),
	}}
	for _, o := range opts {
		o(h)
	}
	if h.policy == nil {
		h.policy = v1alpha1.DefaultTierPolicy()
	}
	h.start(t)
	classes, err := tiers.Render(h.policy)
	require.NoError(t, err)
	h.cluster = allocator.NewCluster(h.publishedSlices(t), classes...)
	return h
}

// start starts the plugin (again, after stop: a plugin restart) and dials
// its sockets.
func (h *harness) start(t testing.TB) {
	h.stop = h.startDriver(t, h.cfg)
	h.dra = drapb.NewDRAPluginClient(dial(t, filepath.Join(h.cfg.PluginDataDir, "dra.sock")))
	h.reg = registerapi.NewRegistrationClient(dial(t, filepath.Join(h.cfg.RegistrarDir, v1alpha1.DriverName+"-reg.sock")))
}

// startDriver starts a plugin with cfg on the harness's node and returns
// the function that stops it; it is stopped at the end of the test anyway.
func (h *harness) startDriver(t testing.TB, cfg plugin.Config) func() {
	deps := plugin.Deps{Client: h.client, GPUs: h.gpus, Policy: h.policy, Runner: h.runner, Clock: h.clock,
		Metrics: h.metrics}
	if h.dynamic != nil {
		deps.Dynamic, deps.Policy = h.dynamic, nil
	}
	if h.hardware != nil {
		deps.GPUs = h.hardware
	}
	d, err := plugin.Start(h.ctx, cfg, deps)
	require.NoError(t, err)
	h.driver = d
	t.Cleanup(func() { require.NoError(t, d.Stop()) })
	return func() { require.NoError(t, d.Stop()) }
}

// restart stops the plugin and starts it again on the same node and state.
func (h *harness) restart(t testing.TB) {
	h.stop()
	h.stop = nil
	h.start(t)
}

// generateName does what the API server does with metadata.generateName,
// which the fake clientset ignores.
func generateName() k8stesting.ReactionFunc {
	var n atomic.Int64
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		obj := action.(k8stesting.CreateAction).GetObject().(metav1.Object)
		if obj.GetName() == "" && obj.GetGenerateName() != "" {
			obj.SetName(fmt.Sprintf("%s%d", obj.GetGenerateName(), n.Add(1)))
		}
		return false, nil, nil
	}
}

// shortTempDir keeps unix socket paths under the 108-byte limit.
func shortTempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "t")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func dial(t testing.TB, socket string) *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// publishedSlices waits for all of the plugin's ResourceSlices in the API.
func (h *harness) publishedSlices(t testing.TB) []*resourceapi.ResourceSlice {
	var out []*resourceapi.ResourceSlice
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := h.client.ResourceV1().ResourceSlices().List(h.ctx, metav1.ListOptions{})
		require.NoError(c, err)
		out = out[:0]
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		require.NotEmpty(c, out, "published slices")
		assert.Equal(c, int(out[0].Spec.Pool.ResourceSliceCount), len(out), "the whole pool is published")
	}, 10*time.Second, 20*time.Millisecond)
	return out
}

// claim allocates the claim with the scheduler's allocator (mutate changes
// the result, for bad input) and stores it in the API.
func (h *harness) claim(t testing.TB, claim *resourceapi.ResourceClaim, mutate func(*resourceapi.AllocationResult)) *resourceapi.ResourceClaim {
	result, err := h.cluster.AllocateResult(h.ctx, nodeName, claim)
	require.NoError(t, err)
	require.NotNil(t, result, "claim %s does not fit", claim.Name)
	if mutate != nil {
		mutate(result)
	}
	claim.Status.Allocation = result
	claim, err = h.client.ResourceV1().ResourceClaims(claim.Namespace).Create(h.ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)
	return claim
}

func (h *harness) prepare(claims ...*resourceapi.ResourceClaim) (*drapb.NodePrepareResourcesResponse, error) {
	return h.dra.NodePrepareResources(h.ctx, &drapb.NodePrepareResourcesRequest{Claims: pbClaims(claims)})
}

func (h *harness) unprepare(claims ...*resourceapi.ResourceClaim) (*drapb.NodeUnprepareResourcesResponse, error) {
	return h.dra.NodeUnprepareResources(h.ctx, &drapb.NodeUnprepareResourcesRequest{Claims: pbClaims(claims)})
}

func pbClaims(claims []*resourceapi.ResourceClaim) []*drapb.Claim {
	var out []*drapb.Claim
	for _, c := range claims {
		out = append(out, &drapb.Claim{Namespace: c.Namespace, Name: c.Name, Uid: string(c.UID)})
	}
	return out
}

func (h *harness) gpu(t testing.TB, index int) inventory.GPU {
	m, err := h.gpus.Machine(h.ctx)
	require.NoError(t, err)
	return m.GPUs[index]
}

// assertNothingPrepared: no checkpoint record, no CDI spec, no MIG
// instance, every compute mode Default.
func (h *harness) assertNothingPrepared(t testing.TB) {
	for _, dir := range []string{filepath.Join(h.cfg.StateDir, "checkpoint"), h.cfg.CDIDir} {
		entries, err := os.ReadDir(dir)
		if !os.IsNotExist(err) {
			require.NoError(t, err)
		}
		for _, e := range entries {
			require.True(t, e.IsDir(), "left over in %s: %s", dir, e.Name())
		}
	}
	m, err := h.gpus.Machine(h.ctx)
	require.NoError(t, err)
	for _, g := range m.GPUs {
		if g.MIG != nil {
			require.Empty(t, g.MIG.Instances, "MIG instances on GPU %d", g.Index)
		}
		require.Equal(t, inventory.ComputeModeDefault, g.ComputeMode, "compute mode of GPU %d", g.Index)
	}
}
