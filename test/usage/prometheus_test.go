package usage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/usage"
	"github.com/tierra-gpu/tierra/test/stack"
)

type claimList []usage.Claim

func (l claimList) PreparedClaims() []usage.Claim { return l }

func podUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", n) }

func value(v model.Vector, label, want string) (float64, bool) {
	for _, s := range v {
		if string(s.Metric[model.LabelName(label)]) == want {
			return float64(s.Value), true
		}
	}
	return 0, false
}

// node is a simulated node: a fake machine whose processes come from a
// file, a fake /proc, and the claims its plugin prepared.
type node struct {
	fake      *nvgpu.Fake
	procsFile string
	shared    string // the time-sliced GPU
	pods      podproc.Mapper
	claims    claimList
}

// newNode: two pods of tenant acme time-slice one GPU at 30 % and 50 %
// (the second in two processes); tenant bolt runs in a MIG instance; a
// claim of tenant acme on another GPU runs nothing.
func newNode(ctx context.Context, t *testing.T) node {
	n := node{procsFile: filepath.Join(t.TempDir(), "processes.json"), pods: podproc.Mapper{ProcRoot: t.TempDir()}}
	t.Setenv(nvgpu.FakeProcessesEnv, n.procsFile)
	f, err := nvgpu.NewFake(ctx, "mixed", nvgpu.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.Close()) })
	n.fake = f
	m, err := f.Machine(ctx)
	require.NoError(t, err)
	n.shared = m.GPUs[4].UUID
	idleGPU, migGPU := m.GPUs[5].UUID, m.GPUs[0]
	in := migGPU.MIG.Instances[0]
	gi, ci := in.GPUInstanceID, in.ComputeInstances[0].ID
	require.NoError(t, nvgpu.WriteFakeProcesses(n.procsFile, []nvgpu.FakeProcess{
		{PID: 101, GPUUUID: n.shared, SMPercent: 30, MemoryBytes: 10 << 30},
		{PID: 102, GPUUUID: n.shared, SMPercent: 20, MemoryBytes: 4 << 30},
		{PID: 103, GPUUUID: n.shared, SMPercent: 30, MemoryBytes: 2 << 30},
		{PID: 301, GPUUUID: migGPU.UUID, GPUInstance: ptr.To(gi), ComputeInstance: ptr.To(ci), MemoryBytes: 7 << 30},
	}))
	for pid, uid := range map[uint32]string{101: podUID(1), 102: podUID(2), 103: podUID(2), 301: podUID(3)} {
		require.NoError(t, podproc.WriteFakeCgroup(n.pods.ProcRoot, pid, uid))
	}
	h200 := func(ref usage.GPURef) usage.Device {
		return usage.Device{GPU: ref, Product: "NVIDIA H200 NVL", MemoryBytes: 140 << 30, Multiprocessors: 132}
	}
	n.claims = claimList{
		{UID: "c1", Namespace: "team-a", Name: "notebooks", Tenant: "acme", Tier: "dev",
			Pods:    []usage.Pod{{UID: podUID(1), Name: "nb-0"}, {UID: podUID(2), Name: "nb-1"}},
			Devices: []usage.Device{h200(usage.WholeGPU(n.shared))}},
		{UID: "c2", Namespace: "team-b", Name: "small", Tenant: "bolt", Tier: "inference",
			Pods:    []usage.Pod{{UID: podUID(3), Name: "infer-0"}},
			Devices: []usage.Device{h200(usage.MIGRef(migGPU.UUID, gi, ci))}},
		{UID: "c3", Namespace: "team-a", Name: "forgotten", Tenant: "acme", Tier: "training",
			Pods:    []usage.Pod{{UID: podUID(4), Name: "train-0"}},
			Devices: []usage.Device{h200(usage.WholeGPU(idleGPU))}, CostPerHour: 3.5},
	}
	return n
}

// serve exports the node's use and idle claims (idle window 3 s) on a
// loopback /metrics and starts a Prometheus that scrapes it.
func (n node) serve(ctx context.Context, t *testing.T) *stack.Prometheus {
	reg := metrics.NewRegistry()
	uc, err := metrics.NewUsageCollector(metrics.UsageOptions{Processes: n.fake, Claims: n.claims, Pods: n.pods,
		Logger: klog.FromContext(ctx)})
	require.NoError(t, err)
	tracker, err := usage.NewTracker(usage.TrackerOptions{IdleWindow: 3 * time.Second})
	require.NoError(t, err)
	mon, err := usage.NewMonitor(usage.MonitorOptions{Processes: n.fake, Pods: n.pods, Claims: n.claims, Tracker: tracker,
		Interval: 200 * time.Millisecond})
	require.NoError(t, err)
	go mon.Run(ctx)
	reg.MustRegister(uc, metrics.NewIdleCollector(tracker))
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	prom, err := stack.StartPrometheus(ctx, t.TempDir(), stack.Target{Job: "tierra-kubelet-plugin", Addrs: []string{addr}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, prom.Stop()) })
	return prom
}

func TestPerTenantUseInPrometheus(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	n := newNode(ctx, t)
	prom := n.serve(ctx, t)

	start := time.Now()
	const perTenant = `sum by (tenant) (tierra_pod_gpu_utilization_ratio)`
	v, err := prom.WaitFor(ctx, perTenant, 30*time.Second, func(v model.Vector) bool { return len(v) > 0 })
	require.NoError(t, err)
	t.Logf("%s = %v (%.1fs after Prometheus started)", perTenant, v, time.Since(start).Seconds())
	acme, ok := value(v, "tenant", "acme")
	require.True(t, ok)
	assert.InDelta(t, 0.8, acme, 1e-9)
	_, ok = value(v, "tenant", "bolt")
	assert.False(t, ok, "no utilization inside MIG")

	v, err = prom.Query(ctx, `tierra_pod_gpu_utilization_ratio{tenant="acme"}`)
	require.NoError(t, err)
	nb0, _ := value(v, "pod", "nb-0")
	nb1, _ := value(v, "pod", "nb-1")
	assert.InDelta(t, 0.3, nb0, 1e-9)
	assert.InDelta(t, 0.5, nb1, 1e-9)

	v, err = prom.Query(ctx, `sum by (tenant) (tierra_pod_gpu_memory_used_bytes)`)
	require.NoError(t, err)
	acmeMem, _ := value(v, "tenant", "acme")
	boltMem, _ := value(v, "tenant", "bolt")
	assert.Equal(t, float64(16<<30), acmeMem)
	assert.Equal(t, float64(7<<30), boltMem)

	const idle = `tierra_claim_idle == 1`
	v, err = prom.WaitFor(ctx, idle, 30*time.Second, func(v model.Vector) bool { return len(v) > 0 })
	require.NoError(t, err)
	t.Logf("%s = %v (%.1fs after Prometheus started, window 3s)", idle, v, time.Since(start).Seconds())
	require.Len(t, v, 1)
	assert.Equal(t, "forgotten", string(v[0].Metric["claim"]))

	// The use follows the processes: pod nb-1's second process ends.
	require.NoError(t, nvgpu.WriteFakeProcesses(n.procsFile, []nvgpu.FakeProcess{
		{PID: 101, GPUUUID: n.shared, SMPercent: 30, MemoryBytes: 10 << 30},
		{PID: 102, GPUUUID: n.shared, SMPercent: 20, MemoryBytes: 4 << 30},
	}))
	_, err = prom.WaitFor(ctx, perTenant, 30*time.Second, func(v model.Vector) bool {
		x, ok := value(v, "tenant", "acme")
		return ok && x < 0.51 && x > 0.49
	})
	require.NoError(t, err, "acme drops to 0.5")
}
