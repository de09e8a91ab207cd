package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// recoveryNode runs the recovery scenarios: no other test faults its GPUs,
// so no earlier fault damps their quiet periods.
const recoveryNode = "l4-serve"

// recoveryLate is how late a clear may come after its quiet period: the
// health loop checks every 250 ms, then the slices are rewritten and the
// test polls them every 20 ms.
const recoveryLate = 1500 * time.Millisecond

// gpuDevices are the devices the node publishes of GPU index.
func gpuDevices(ctx context.Context, t *testing.T, node string, index int64) []resourceapi.Device {
	t.Helper()
	var out []resourceapi.Device
	for _, d := range poolDevices(ctx, t, node) {
		if i, ok := tslices.IntAttribute(d, tslices.AttrIndex); ok && i == index {
			out = append(out, d)
		}
	}
	return out
}

// hasTaint reports whether d carries a taint with key.
func hasTaint(d resourceapi.Device, key string) bool {
	return slices.ContainsFunc(d.Taints, func(t resourceapi.DeviceTaint) bool { return t.Key == key })
}

// waitGPU polls the node's devices of GPU index every 20 ms until cond
// holds for them, and returns when it saw that.
func waitGPU(ctx context.Context, t *testing.T, node string, index int64, within time.Duration, what string, cond func([]resourceapi.Device) bool) time.Time {
	t.Helper()
	var last []resourceapi.Device
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		last = gpuDevices(ctx, t, node, index)
		return cond(last), nil
	})
	require.NoError(t, err, "GPU %d of %s: %s not within %s (devices: %v)", index, node, what, within, deviceTaints(last))
	return time.Now()
}

func deviceTaints(devs []resourceapi.Device) map[string][]resourceapi.DeviceTaint {
	out := map[string][]resourceapi.DeviceTaint{}
	for _, d := range devs {
		out[d.Name] = d.Taints
	}
	return out
}

// allTainted is true when devs is not empty and each carries key; untainted
// when devs is not empty and none carries a health taint.
func allTainted(key string) func([]resourceapi.Device) bool {
	return func(devs []resourceapi.Device) bool {
		return len(devs) > 0 && !slices.ContainsFunc(devs, func(d resourceapi.Device) bool { return !hasTaint(d, key) })
	}
}

func untainted(devs []resourceapi.Device) bool {
	return len(devs) > 0 && !slices.ContainsFunc(devs, func(d resourceapi.Device) bool {
		return hasTaint(d, health.XIDTaintKey) || hasTaint(d, health.LostTaintKey) || hasTaint(d, health.ECCTaintKey)
	})
}

// recordedGPU is what the node's plugin recorded of the GPU with uuid (what
// tierra inspect --state-dir shows).
func recordedGPU(t *testing.T, node, uuid string) health.GPUStatus {
	t.Helper()
	s, err := env.nodes[node].HealthStatus()
	require.NoError(t, err)
	for _, g := range s.GPUs {
		if g.UUID == uuid {
			return g
		}
	}
	return health.GPUStatus{UUID: uuid, State: health.StateHealthy}
}

// waitRecorded waits (2 s at most) until the plugin's record of the GPU is
// in state, and returns the record: the plugin writes it right after it
// asks for the slices to be rewritten, so it may come a little after them.
func waitRecorded(t *testing.T, node, uuid string, state health.State) health.GPUStatus {
	t.Helper()
	var rec health.GPUStatus
	require.Eventually(t, func() bool {
		rec = recordedGPU(t, node, uuid)
		return rec.State == state
	}, 2*time.Second, 10*time.Millisecond, "the plugin's record of %s never said %s: %+v", uuid, state, rec)
	return rec
}

// healthScenario sets the node's health section for a test and, at its
// end, restores the policy and waits until GPU index is published
// untainted again (healed first, should the test have left it lost). It
// returns the GPU's UUID once the GPU is published, untainted, before any
// fault.
func healthScenario(ctx context.Context, t *testing.T, node string, index int64, section map[string]string, wait time.Duration) string {
	t.Helper()
	setHealthSection(ctx, t, node, section)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		assert.NoError(t, env.nodes[node].InjectFault(nvgpu.FakeFault{GPU: int(index), Kind: nvgpu.FaultHeal}))
		setHealthSection(ctx, t, node, nil)
		waitGPU(ctx, t, node, index, wait, "untainted after the test", untainted)
	})
	devs := gpuDevices(ctx, t, node, index)
	require.NotEmpty(t, devs)
	uuid := tslices.DeviceGPU(devs[0])
	waitGPU(ctx, t, node, index, 2*time.Second, "healthy before the fault", untainted)
	return uuid
}

// A GPU that falls off the bus is left out of the node's slices for as long
// as it does not answer NVML, however long that is past the quiet period;
// back on the bus it is published again, tainted gpu-lost, and the taint
// clears once it has answered for the quiet period. The plugin's health
// record (tierra inspect) says Lost, then Tainted, then Healthy.
func TestHealthLostGPUComesBackAndClears(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const index, quiet = 3, 3 * time.Second
	uuid := healthScenario(ctx, t, recoveryNode, index, map[string]string{"quietPeriod": quiet.String()}, 2*quiet+10*time.Second)

	lostAt := time.Now()
	require.NoError(t, env.nodes[recoveryNode].InjectFault(nvgpu.FakeFault{GPU: index, Kind: nvgpu.FaultLost}))
	goneAt := waitGPU(ctx, t, recoveryNode, index, 2*time.Second, "left out", func(d []resourceapi.Device) bool { return len(d) == 0 })
	waitRecorded(t, recoveryNode, uuid, health.StateLost)
	others := 0
	for _, d := range poolDevices(ctx, t, recoveryNode) {
		others++
		assert.False(t, hasTaint(d, health.LostTaintKey), "device %s of another GPU is not tainted", d.Name)
	}
	assert.Positive(t, others, "the node's other GPUs stay published")
	require.Never(t, func() bool {
		return len(gpuDevices(ctx, t, recoveryNode, index)) > 0
	}, quiet+time.Second, 100*time.Millisecond, "a GPU that does not answer stays away past the quiet period")

	healAt := time.Now()
	require.NoError(t, env.nodes[recoveryNode].InjectFault(nvgpu.FakeFault{GPU: index, Kind: nvgpu.FaultHeal}))
	backAt := waitGPU(ctx, t, recoveryNode, index, 2*time.Second, "back, tainted gpu-lost", allTainted(health.LostTaintKey))
	rec := waitRecorded(t, recoveryNode, uuid, health.StateTainted)
	require.NotNil(t, rec.ClearsAt, "answers again: tainted until a known time")
	clearedAt := waitGPU(ctx, t, recoveryNode, index, quiet+recoveryLate+time.Second, "untainted after the quiet period", untainted)
	assert.GreaterOrEqual(t, clearedAt.Sub(healAt), quiet, "not before a quiet period of answering")
	assert.Less(t, clearedAt.Sub(healAt), quiet+recoveryLate)
	waitRecorded(t, recoveryNode, uuid, health.StateHealthy)
	t.Logf("GPU %d lost: left out after %s, away for %s; healed: back tainted after %s, cleared %s after the heal (quiet period %s)",
		index, goneAt.Sub(lostAt).Round(time.Millisecond), healAt.Sub(goneAt).Round(time.Millisecond),
		backAt.Sub(healAt).Round(time.Millisecond), clearedAt.Sub(healAt).Round(time.Millisecond), quiet)
}

// Flap damping: a GPU that faults again soon after its taint cleared (within
// the flap window) stays tainted twice as long the second time; the
// plugin's record shows the doubled quiet period.
func TestHealthFlappingGPUStaysTaintedLonger(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const index, quiet = 2, 2 * time.Second
	uuid := healthScenario(ctx, t, recoveryNode, index,
		map[string]string{"quietPeriod": quiet.String(), "maxQuietPeriod": "1m", "flapWindow": "1m"}, 4*quiet+10*time.Second)

	// fault raises XID 79 and returns when it did, when the taint cleared
	// and the quiet period the plugin recorded meanwhile.
	fault := func() (faultAt, clearedAt time.Time, recorded time.Duration) {
		faultAt = time.Now()
		require.NoError(t, env.nodes[recoveryNode].InjectFault(nvgpu.FakeFault{GPU: index, Kind: nvgpu.FaultXID, XID: 79}))
		waitGPU(ctx, t, recoveryNode, index, 2*time.Second, "tainted xid=79", allTainted(health.XIDTaintKey))
		rec := waitRecorded(t, recoveryNode, uuid, health.StateTainted)
		require.NotNil(t, rec.QuietPeriod, "recorded: %+v", rec)
		clearedAt = waitGPU(ctx, t, recoveryNode, index, 4*quiet+recoveryLate, "untainted", untainted)
		return faultAt, clearedAt, rec.QuietPeriod.Duration
	}
	f1, c1, q1 := fault()
	first := c1.Sub(f1)
	f2, c2, q2 := fault()
	second := c2.Sub(f2)
	assert.Equal(t, []time.Duration{quiet, 2 * quiet}, []time.Duration{q1, q2}, "the quiet periods the plugin recorded")
	rec := waitRecorded(t, recoveryNode, uuid, health.StateHealthy)
	require.Len(t, rec.Events, 2)
	assert.Less(t, rec.Events[1].Time.Sub(rec.Events[0].Time), time.Minute, "the second fault came within the flap window")

	assert.GreaterOrEqual(t, first, quiet, "the first clear waits the quiet period")
	assert.Less(t, first, quiet+recoveryLate, "the first fault is not damped")
	assert.GreaterOrEqual(t, second, 2*quiet, "the second fault within the flap window doubles the quiet period")
	assert.Less(t, second, 2*quiet+recoveryLate)
	assert.GreaterOrEqual(t, second-first, quiet-recoveryLate, "the second clear takes about one quiet period longer")
	t.Logf("quiet period %s: first fault cleared after %s; refault %s after that clear, cleared after %s (damped to %s)",
		quiet, first.Round(time.Millisecond), f2.Sub(c1).Round(time.Millisecond), second.Round(time.Millisecond), 2*quiet)
}

// A plugin killed right after XID 79 on a GPU (nodesim restarts it, as a
// crash and the DaemonSet would) publishes the GPU still tainted, and the
// taint clears at the time the first plugin recorded, a quiet period after
// the fault, with no new event: health survives the restart.
func TestHealthTaintSurvivesPluginRestart(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const index, quiet = 1, 6 * time.Second
	uuid := healthScenario(ctx, t, recoveryNode, index, map[string]string{"quietPeriod": quiet.String()}, 2*quiet+10*time.Second)

	faultAt := time.Now()
	require.NoError(t, env.nodes[recoveryNode].InjectFault(nvgpu.FakeFault{GPU: index, Kind: nvgpu.FaultXID, XID: 79}))
	waitGPU(ctx, t, recoveryNode, index, 2*time.Second, "tainted xid=79", allTainted(health.XIDTaintKey))
	before := waitRecorded(t, recoveryNode, uuid, health.StateTainted)
	require.NotNil(t, before.ClearsAt, "recorded: %+v", before)
	clearsAt := *before.ClearsAt

	restartAt := time.Now()
	require.NoError(t, env.nodes[recoveryNode].RestartPlugin(ctx))
	restartedAt := time.Now()
	require.Less(t, restartedAt, clearsAt.Add(-time.Second), "the restart took too long for this test")
	// Tainted right after the restart and at every look until just before
	// the recorded clear time.
	for time.Until(clearsAt) > 300*time.Millisecond {
		require.True(t, allTainted(health.XIDTaintKey)(gpuDevices(ctx, t, recoveryNode, index)),
			"GPU %d untainted %s after the restart, %s before its recorded clear time", index,
			time.Since(restartedAt).Round(time.Millisecond), time.Until(clearsAt).Round(time.Millisecond))
		time.Sleep(50 * time.Millisecond)
	}
	clearedAt := waitGPU(ctx, t, recoveryNode, index, time.Until(clearsAt)+recoveryLate, "untainted at the recorded clear time", untainted)
	assert.False(t, clearedAt.Before(clearsAt), "not before the recorded clear time")
	assert.Less(t, clearedAt.Sub(clearsAt), recoveryLate, "at the recorded clear time, not a quiet period after the restart")
	after := waitRecorded(t, recoveryNode, uuid, health.StateHealthy)
	assert.Equal(t, before.Events, after.Events, "the events recorded before the restart are kept, and no new one came")
	t.Logf("XID 79 on GPU %d: plugin restarted %s after the fault in %s, still tainted; cleared %s after the fault (quiet period %s, %s after the recorded time)",
		index, restartAt.Sub(faultAt).Round(time.Millisecond), restartedAt.Sub(restartAt).Round(time.Millisecond),
		clearedAt.Sub(faultAt).Round(time.Millisecond), quiet, clearedAt.Sub(clearsAt).Round(time.Millisecond))
}
