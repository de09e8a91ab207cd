package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	drahealth "k8s.io/kubelet/pkg/apis/dra-health/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// restartQuiet is long enough for a restart to finish well inside it.
const restartQuiet = 4 * time.Second

// sliceWrite is one write of a ResourceSlice to the API: when, and the
// taints of one device in it (absent: the slice does not hold the device).
type sliceWrite struct {
	at     time.Time
	taints []string
	found  bool
}

// sliceLog is every create and update of a ResourceSlice, with the taints of
// one device.
type sliceLog struct {
	device string
	mu     sync.Mutex
	writes []sliceWrite
}

// recordSliceWrites has the harness's client log its ResourceSlice writes
// into l: a reactor added before the plugin starts (adding one later races
// with the client's use).
func recordSliceWrites(l *sliceLog) func(*harness) {
	return func(h *harness) { h.client.PrependReactor("*", "resourceslices", l.react) }
}

func (l *sliceLog) react(action k8stesting.Action) (bool, runtime.Object, error) {
	// Create and update actions both carry the object they write.
	write, ok := action.(k8stesting.CreateAction)
	if !ok || (action.GetVerb() != "create" && action.GetVerb() != "update") {
		return false, nil, nil
	}
	s, ok := write.GetObject().(*resourceapi.ResourceSlice)
	if !ok {
		return false, nil, nil
	}
	w := sliceWrite{at: time.Now()}
	for _, d := range s.Spec.Devices {
		if d.Name == l.device {
			w.found = true
			for _, taint := range d.Taints {
				w.taints = append(w.taints, taint.Key+"="+taint.Value+":"+string(taint.Effect))
			}
		}
	}
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
	return false, nil, nil
}

// since is the writes from at on.
func (l *sliceLog) since(at time.Time) []sliceWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sliceWrite
	for _, w := range l.writes {
		if !w.at.Before(at) {
			out = append(out, w)
		}
	}
	return out
}

// A plugin restarted after XID 79 on GPU 2 publishes GPU 2 tainted from its
// first write, tells the kubelet the claim on it is Unhealthy, and clears
// the taint at the time the first plugin recorded, with no new event.
func TestRestartKeepsXIDTaintUntilItsClearTime(t *testing.T) {
	p := v1alpha1.DefaultTierPolicy()
	p.Spec.Health = &v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: restartQuiet}}
	writes := &sliceLog{device: "gpu-2"}
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(p), recordSliceWrites(writes))
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	claim := h.claim(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj(),
		func(r *resourceapi.AllocationResult) { r.Devices.Results[0].Device = "gpu-2" })
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-train"].Error)

	require.NoError(t, h.gpus.InjectXID(2, 79))
	want := map[string][]string{"gpu-2": {health.XIDTaintKey + "=79:NoSchedule"}}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, h.taintsOf(t)) }, 2*time.Second, 10*time.Millisecond)
	var clearsAt time.Time
	require.Eventually(t, func() bool {
		s, err := health.ReadStatus(h.cfg.StateDir)
		if err != nil || len(s.GPUs) != 1 || s.GPUs[0].ClearsAt == nil {
			return false
		}
		clearsAt = *s.GPUs[0].ClearsAt
		return true
	}, 2*time.Second, 10*time.Millisecond, "the first plugin records the clear time")

	stopped := time.Now()
	h.restart(t)
	restarted := time.Now()
	require.Less(t, restarted, clearsAt.Add(-time.Second), "the restart took too long for this test")
	assert.Equal(t, want, h.taintsOf(t), "still tainted right after the restart")
	h.watchHealth(t)("gpu-2", drahealth.HealthStatus_UNHEALTHY)

	require.Eventually(t, func() bool { return len(h.taintsOf(t)) == 0 }, restartQuiet+5*time.Second, 10*time.Millisecond)
	cleared := time.Now()
	assert.GreaterOrEqual(t, cleared, clearsAt, "not before the recorded clear time")
	assert.Less(t, cleared.Sub(clearsAt), time.Second, "at the recorded clear time, not a quiet period after the restart")
	for _, w := range writes.since(stopped) {
		if w.found && w.at.Before(clearsAt) {
			assert.Equal(t, want["gpu-2"], w.taints, "every write before the clear time carries the taint (at %s)", w.at.Sub(restarted))
		}
	}
}

// A record of another boot restores no fault: the reboot reset the GPU.
func TestRestartAfterRebootDropsRecordedTaints(t *testing.T) {
	writes := &sliceLog{device: "gpu-2"}
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()), recordSliceWrites(writes))
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, h.gpus.InjectXID(2, 79))
	require.Eventually(t, func() bool {
		s, err := health.ReadStatus(h.cfg.StateDir)
		return err == nil && len(s.GPUs) == 1 && s.GPUs[0].State == health.StateTainted && s.BootID == "boot-1"
	}, 2*time.Second, 10*time.Millisecond, "recorded tainted, under the boot id")
	require.Eventually(t, func() bool { return len(h.taintsOf(t)) == 1 }, 2*time.Second, 10*time.Millisecond,
		"the first plugin's tainted write is done")

	h.cfg.BootID = "boot-2"
	stopped := time.Now()
	h.restart(t)
	require.Eventually(t, func() bool { return len(h.taintsOf(t)) == 0 }, 2*time.Second, 10*time.Millisecond)
	after := writes.since(stopped)
	require.NotEmpty(t, after)
	assert.Empty(t, after[0].taints, "the first write after the reboot is untainted")
	s, err := health.ReadStatus(h.cfg.StateDir)
	require.NoError(t, err)
	assert.Equal(t, "boot-2", s.BootID)
	require.Len(t, s.GPUs, 1)
	assert.Equal(t, health.StateHealthy, s.GPUs[0].State)
	assert.Len(t, s.GPUs[0].Events, 1, "the event stays on record")
}

// A torn health record does not keep the plugin from starting: it is moved
// aside, logged and reported as a Node event, and health starts empty.
func TestRestartQuarantinesACorruptHealthRecord(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()))
	h.stop()
	torn := `{"version":"health.tierra.dev/v1","gpus":[{"uuid":"GPU-`
	require.NoError(t, os.WriteFile(filepath.Join(h.cfg.StateDir, health.StatusFile), []byte(torn), 0o600))
	h.start(t)

	assert.Empty(t, h.taintsOf(t))
	moved, err := filepath.Glob(filepath.Join(h.cfg.StateDir, health.QuarantineDir, health.StatusFile+".*"))
	require.NoError(t, err)
	require.Len(t, moved, 1)
	data, err := os.ReadFile(moved[0])
	require.NoError(t, err)
	assert.Equal(t, torn, string(data), "moved aside whole")
	s, err := health.ReadStatus(h.cfg.StateDir)
	require.NoError(t, err, "a fresh record replaces it")
	assert.Empty(t, s.GPUs)
	events, err := h.client.CoreV1().Events(metav1.NamespaceDefault).List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var found bool
	for _, ev := range events.Items {
		if ev.Reason == plugin.ReasonHealthRecordQuarantined {
			found = true
			assert.Equal(t, "Warning", ev.Type)
			assert.Equal(t, nodeName, ev.InvolvedObject.Name)
			assert.True(t, strings.Contains(ev.Message, moved[0]), "the event names where it went: %s", ev.Message)
		}
	}
	assert.True(t, found, "a %s event on the node", plugin.ReasonHealthRecordQuarantined)
}
