package plugin_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

// withPodUsage turns per-pod GPU use on over a fake /proc, with metrics
// served on a loopback port, a fast usage monitor and the idle window.
func withPodUsage(window time.Duration, clk *testingclock.FakeClock) func(*harness) {
	return func(h *harness) {
		withMetrics()(h)
		h.cfg.MetricsAddress = "127.0.0.1:0"
		h.cfg.ProcRoot = h.cfg.StateDir + "/proc"
		h.cfg.UsageInterval = 10 * time.Millisecond
		h.cfg.IdleWindow = window
		if clk != nil {
			h.clock = clk
		}
	}
}

// runPodProcess runs a fake GPU process of the pod on the GPU, with its
// /proc/<pid>/cgroup naming the pod.
func (h *harness) runPodProcess(t testing.TB, pid uint32, podUID, gpu string, sm uint32, memory uint64) {
	require.NoError(t, h.gpus.RunProcess(nvgpu.FakeProcess{PID: pid, GPUUUID: gpu, SMPercent: sm, MemoryBytes: memory}))
	require.NoError(t, podproc.WriteFakeCgroup(h.cfg.ProcRoot, pid, podUID))
}

// timeShare is a dev-tier claim for a quarter of a time-sliced GPU's
// compute, reserved for pod.
func (h *harness) timeShare(t testing.TB, name, pod, podUID string) *resourceapi.ResourceClaim {
	return h.claim(t, reservedFor(tierratest.MakeClaim(name, "team-a").UID("uid-"+name).Request("gpu", tiers.ClassName(v1alpha1.TierDev)).
		Capacity(tslices.CapCompute, "250").Obj(), pod, podUID), nil)
}

// Two pods of one tenant time-slice a GPU at 30 % and 50 % of its SMs: the
// plugin's /metrics says so per pod, with namespace, claim, tenant, tier
// and GPU, and a process in no prepared pod counts as unattributed.
func TestPerPodGPUUseOnTimeSlicedGPU(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev, withPodUsage(time.Hour, nil))
	const uid30, uid50 = "0a0a0a0a-0000-4000-8000-000000000030", "0a0a0a0a-0000-4000-8000-000000000050"
	nb30, nb50 := h.timeShare(t, "nb-30", "nb-30-0", uid30), h.timeShare(t, "nb-50", "nb-50-0", uid50)
	resp, err := h.prepare(nb30, nb50)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-nb-30"].Error)
	require.Empty(t, resp.Claims["uid-nb-50"].Error)
	gpu := h.gpu(t, 0).UUID
	h.runPodProcess(t, 1030, uid30, gpu, 30, 2<<30)
	h.runPodProcess(t, 1050, uid50, gpu, 50, 6<<30)
	require.NoError(t, h.gpus.RunProcess(nvgpu.FakeProcess{PID: 1, GPUUUID: gpu, SMPercent: 5, MemoryBytes: 1 << 30})) // a host process

	labels := func(claim, pod string) string {
		return "claim=" + claim + ",gpu_uuid=" + gpu + ",mig_ci=,mig_gi=,namespace=team-a,pod=" + pod + ",tenant=research,tier=dev"
	}
	assert.Equal(t, map[string]float64{labels("nb-30", "nb-30-0"): 0.3, labels("nb-50", "nb-50-0"): 0.5},
		series(t, h.metrics, "tierra_pod_gpu_utilization_ratio"))
	assert.Equal(t, map[string]float64{labels("nb-30", "nb-30-0"): 2 << 30, labels("nb-50", "nb-50-0"): 6 << 30},
		series(t, h.metrics, "tierra_pod_gpu_memory_used_bytes"))
	assert.Equal(t, map[string]float64{"gpu_uuid=" + gpu + ",mig_ci=,mig_gi=": 1 << 30},
		series(t, h.metrics, "tierra_gpu_unattributed_memory_used_bytes"))

	body := scrape(t, h.ctx, "http://"+h.driver.MetricsAddress()+"/metrics")
	assert.Contains(t, body, `tierra_pod_gpu_utilization_ratio{claim="nb-30",gpu_uuid="`+gpu+`",mig_ci="",mig_gi="",namespace="team-a",pod="nb-30-0",tenant="research",tier="dev"} 0.3`)

	_, err = h.unprepare(nb50)
	require.NoError(t, err)
	assert.NotContains(t, series(t, h.metrics, "tierra_pod_gpu_utilization_ratio"), labels("nb-50", "nb-50-0"),
		"an unprepared claim's pod is no longer attributed")
}

// Without a proc root (--proc-root=""), the plugin exports no per-pod use.
func TestNoPerPodGPUUseWithoutProcRoot(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev, withMetrics())
	nb := h.timeShare(t, "nb", "nb-0", "0a0a0a0a-0000-4000-8000-000000000001")
	_, err := h.prepare(nb)
	require.NoError(t, err)
	require.NoError(t, h.gpus.RunProcess(nvgpu.FakeProcess{PID: 7, GPUUUID: h.gpu(t, 0).UUID, SMPercent: 40}))
	assert.Empty(t, series(t, h.metrics, "tierra_pod_gpu_utilization_ratio"))
	assert.Len(t, series(t, h.metrics, "tierra_claim_device_info"), 1, "the other metrics are on")
}

// A claim whose GPU stays under the idle threshold for the idle window
// gets a Warning GPUIdle event on its pod and tierra_claim_idle 1; a busy
// claim beside it gets neither. A whole H200 whose peaks fit a MIG
// profile gets the Normal GPUOversized event with the suggestion.
func TestIdleAndOversizedClaimEvents(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	h := startPlugin(t, v1alpha1.TierInference, withPodUsage(30*time.Minute, clk))
	const idleUID, busyUID = "0b0b0b0b-0000-4000-8000-000000000001", "0b0b0b0b-0000-4000-8000-000000000002"
	idle := h.claim(t, reservedFor(tierratest.MakeClaim("idle", "team-a").UID("uid-idle").Request("gpu", tiers.ClassGPU).Obj(), "idle-0", idleUID), nil)
	busy := h.claim(t, reservedFor(tierratest.MakeClaim("busy", "team-a").UID("uid-busy").Request("gpu", tiers.ClassGPU).Obj(), "busy-0", busyUID), nil)
	resp, err := h.prepare(idle, busy)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-idle"].Error)
	require.Empty(t, resp.Claims["uid-busy"].Error)
	gpus := map[string]string{}
	for _, dev := range resp.Claims["uid-idle"].Devices {
		gpus["idle"] = h.deviceGPU(t, dev.DeviceName)
	}
	for _, dev := range resp.Claims["uid-busy"].Devices {
		gpus["busy"] = h.deviceGPU(t, dev.DeviceName)
	}
	h.runPodProcess(t, 2001, idleUID, gpus["idle"], 1, 1<<30)
	h.runPodProcess(t, 2002, busyUID, gpus["busy"], 9, 11<<30)

	// The monitor has seen both claims before the clock moves on.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, series(t, h.metrics, "tierra_claim_idle"), 2)
	}, 10*time.Second, 10*time.Millisecond)
	assert.Empty(t, podEvents(t, h, "idle-0"), "not idle before the window")
	clk.Step(31 * time.Minute)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		evs := podEvents(t, h, "idle-0")
		if assert.Len(c, evs, 2, "idle and oversized") {
			assert.Equal(c, corev1.EventTypeWarning, evs[usage.ReasonIdle].Type)
			assert.Contains(c, evs[usage.ReasonIdle].Message, "GPU idle for 31m; the claim idle holds 1 H200")
		}
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]float64{"claim=busy,namespace=team-a,tenant=research,tier=inference": 0,
		"claim=idle,namespace=team-a,tenant=research,tier=inference": 1}, series(t, h.metrics, "tierra_claim_idle"))
	evs := podEvents(t, h, "busy-0")
	require.Contains(t, evs, usage.ReasonOversized)
	assert.NotContains(t, evs, usage.ReasonIdle, "9 % SM is busy")
	assert.Equal(t, corev1.EventTypeNormal, evs[usage.ReasonOversized].Type)
	assert.Contains(t, evs[usage.ReasonOversized].Message, "peak 11 GiB / 9% SM: inference 1g.18gb would fit")
	assert.Equal(t, "idle-0", podEvents(t, h, "idle-0")[usage.ReasonIdle].InvolvedObject.Name)
}

// deviceGPU is the UUID of the GPU behind a published whole-GPU device.
func (h *harness) deviceGPU(t testing.TB, device string) string {
	m, err := h.gpus.Machine(h.ctx)
	require.NoError(t, err)
	for _, g := range m.GPUs {
		if device == "gpu-"+strconv.Itoa(g.Index) {
			return g.UUID
		}
	}
	require.Failf(t, "no GPU", "device %s", device)
	return ""
}

// podEvents are the events on the pod, by reason.
func podEvents(t testing.TB, h *harness, pod string) map[string]corev1.Event {
	list, err := h.client.CoreV1().Events("team-a").List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]corev1.Event{}
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == "Pod" && ev.InvolvedObject.Name == pod {
			out[ev.Reason] = ev
		}
	}
	return out
}
