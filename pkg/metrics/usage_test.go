//go:build cgo

package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

const (
	uidA = "0a0a0a0a-0000-4000-8000-00000000000a"
	uidB = "0b0b0b0b-0000-4000-8000-00000000000b"
	uidM = "0c0c0c0c-0000-4000-8000-00000000000c"
)

// fakeProcRoot writes /proc/<pid>/cgroup files: a systemd cgroup v2 path
// for pods, a system service for host processes ("").
func fakeProcRoot(t testing.TB, pods map[uint32]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, uid := range pods {
		path := "0::/system.slice/nvidia-persistenced.service\n"
		if uid != "" {
			path = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") +
				".slice/cri-containerd-0123.scope\n"
		}
		dir := filepath.Join(root, strconv.Itoa(int(pid)))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup"), []byte(path), 0o644))
	}
	return root
}

type claimList []usage.Claim

func (l claimList) PreparedClaims() []usage.Claim { return l }

// Two pods of one tenant time-slice a GPU at 30 % and 50 % (one of them
// with two processes), a third pod uses a MIG instance, and a host process
// holds memory: the collector reads it all from a fake machine and a fake
// /proc, through the same code the plugin runs.
func TestUsageCollectorOnAFakeMachine(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f, err := nvgpu.NewFake(ctx, "mixed", nvgpu.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.Close()) })
	m, err := f.Machine(ctx)
	require.NoError(t, err)
	shared, migGPU := m.GPUs[4].UUID, m.GPUs[0]
	in := migGPU.MIG.Instances[0]
	gi, ci := in.GPUInstanceID, in.ComputeInstances[0].ID
	for _, p := range []nvgpu.FakeProcess{
		{PID: 101, GPUUUID: shared, SMPercent: 30, MemoryBytes: 10 << 30},
		{PID: 102, GPUUUID: shared, SMPercent: 20, MemoryBytes: 4 << 30},
		{PID: 103, GPUUUID: shared, SMPercent: 30, MemoryBytes: 2 << 30},
		{PID: 200, GPUUUID: shared, SMPercent: 5, MemoryBytes: 1 << 30},
		{PID: 301, GPUUUID: migGPU.UUID, GPUInstance: ptr.To(gi), ComputeInstance: ptr.To(ci), MemoryBytes: 7 << 30},
	} {
		require.NoError(t, f.RunProcess(p))
	}
	procRoot := fakeProcRoot(t, map[uint32]string{101: uidA, 102: uidB, 103: uidB, 200: "", 301: uidM})
	claims := claimList{
		{UID: "c1", Namespace: "team-a", Name: "infer", Tenant: "acme", Tier: "inference",
			Pods:    []usage.Pod{{UID: uidA, Name: "web-0"}, {UID: uidB, Name: "web-1"}},
			Devices: []usage.Device{{GPU: usage.WholeGPU(shared)}}},
		{UID: "c2", Namespace: "team-b", Name: "small", Tenant: "bolt", Tier: "inference",
			Pods:    []usage.Pod{{UID: uidM, Name: "mig-0"}},
			Devices: []usage.Device{{GPU: usage.MIGRef(migGPU.UUID, gi, ci)}}},
	}
	c, err := metrics.NewUsageCollector(metrics.UsageOptions{Processes: f, Claims: claims, Pods: podproc.Mapper{ProcRoot: procRoot}})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	mig := `gpu_uuid="` + migGPU.UUID + `",mig_ci="` + strconv.Itoa(ci) + `",mig_gi="` + strconv.Itoa(gi) + `"`
	want := `
# HELP tierra_pod_gpu_memory_used_bytes GPU memory the pod's processes hold on the GPU or MIG instance (NVML per-process used memory).
# TYPE tierra_pod_gpu_memory_used_bytes gauge
tierra_pod_gpu_memory_used_bytes{claim="infer",gpu_uuid="` + shared + `",mig_ci="",mig_gi="",namespace="team-a",pod="web-0",tenant="acme",tier="inference"} 1.073741824e+10
tierra_pod_gpu_memory_used_bytes{claim="infer",gpu_uuid="` + shared + `",mig_ci="",mig_gi="",namespace="team-a",pod="web-1",tenant="acme",tier="inference"} 6.442450944e+09
tierra_pod_gpu_memory_used_bytes{claim="small",` + mig + `,namespace="team-b",pod="mig-0",tenant="bolt",tier="inference"} 7.516192768e+09
# HELP tierra_pod_gpu_utilization_ratio Share of the GPU's SMs the pod's processes kept busy (0-1, summed over them, capped at 1), averaged over the scrape window from NVML's per-process samples; absent inside MIG instances, where NVML takes none.
# TYPE tierra_pod_gpu_utilization_ratio gauge
tierra_pod_gpu_utilization_ratio{claim="infer",gpu_uuid="` + shared + `",mig_ci="",mig_gi="",namespace="team-a",pod="web-0",tenant="acme",tier="inference"} 0.3
tierra_pod_gpu_utilization_ratio{claim="infer",gpu_uuid="` + shared + `",mig_ci="",mig_gi="",namespace="team-a",pod="web-1",tenant="acme",tier="inference"} 0.5
# HELP tierra_gpu_unattributed_memory_used_bytes GPU memory held by processes in no pod of a claim Tierra prepared here (host processes, the MPS server, other drivers' pods).
# TYPE tierra_gpu_unattributed_memory_used_bytes gauge
tierra_gpu_unattributed_memory_used_bytes{gpu_uuid="` + shared + `",mig_ci="",mig_gi=""} 1.073741824e+09
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "tierra_pod_gpu_memory_used_bytes",
		"tierra_pod_gpu_utilization_ratio", "tierra_gpu_unattributed_memory_used_bytes"))

	f.StopProcess(103)
	n, err := testutil.GatherAndCount(reg, "tierra_pod_gpu_utilization_ratio")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.InDelta(t, 0.2, podValue(t, reg, "tierra_pod_gpu_utilization_ratio", "web-1"), 1e-9, "computed at scrape time")
}

func podValue(t *testing.T, g prometheus.Gatherer, name, pod string) float64 {
	t.Helper()
	return metrics.GaugeWith(t, g, name, "pod", pod)
}

type failingSource struct{}

func (failingSource) ProcessUse(context.Context, time.Time) ([]nvgpu.ProcessUse, error) {
	return nil, errors.New("NVML: Unknown Error")
}

// A failed NVML read leaves the use out and counts the error; the scrape
// itself succeeds.
func TestUsageCollectorCountsReadErrors(t *testing.T) {
	c, err := metrics.NewUsageCollector(metrics.UsageOptions{Processes: failingSource{}, Claims: claimList{}})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for range 2 {
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tierra_pod_gpu_usage_errors_total Failed reads behind the per-pod GPU use series: source nvml (the whole scrape's use is missing) or cgroup (one process could not be mapped to its pod).
# TYPE tierra_pod_gpu_usage_errors_total counter
tierra_pod_gpu_usage_errors_total{source="nvml"} 3
`), "tierra_pod_gpu_usage_errors_total"))
	_, err = metrics.NewUsageCollector(metrics.UsageOptions{})
	assert.ErrorContains(t, err, "required")
}

// BenchmarkUsageCollect is one scrape of a full node: 8 time-sliced GPUs
// with 8 processes each, every process in a pod of a prepared claim,
// through the fake machine (NVML calls) and a fake /proc.
func BenchmarkUsageCollect(b *testing.B) {
	_, ctx := ktesting.NewTestContext(b)
	f, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.Close() })
	m, err := f.Machine(ctx)
	require.NoError(b, err)
	pods := map[uint32]string{}
	var claims claimList
	for i, gpu := range m.GPUs {
		c := usage.Claim{UID: fmt.Sprint("c", i), Namespace: "ns", Name: fmt.Sprint("claim-", i), Tenant: "t", Tier: "dev",
			Devices: []usage.Device{{GPU: usage.WholeGPU(gpu.UUID)}}}
		for j := range 8 {
			pid := uint32(1000 + 8*i + j)
			uid := fmt.Sprintf("%08x-0000-4000-8000-000000000000", pid)
			pods[pid] = uid
			c.Pods = append(c.Pods, usage.Pod{UID: uid, Name: fmt.Sprint("pod-", pid)})
			require.NoError(b, f.RunProcess(nvgpu.FakeProcess{PID: pid, GPUUUID: gpu.UUID, SMPercent: 10, MemoryBytes: 1 << 30}))
		}
		claims = append(claims, c)
	}
	col, err := metrics.NewUsageCollector(metrics.UsageOptions{Processes: f, Claims: claims,
		Pods: podproc.Mapper{ProcRoot: fakeProcRoot(b, pods)}})
	require.NoError(b, err)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 2 {
			b.Fatalf("gather: %d families, %v", len(mfs), err)
		}
	}
}
