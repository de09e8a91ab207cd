package health_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

var minuteQuiet = &v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: time.Minute},
	MaxQuietPeriod: &metav1.Duration{Duration: time.Hour}, FlapWindow: &metav1.Duration{Duration: time.Hour}}

// restored is a tracker restored from s on a fresh fake clock at at.
func restored(s health.Status, at time.Time, opts health.RestoreOptions) (*health.Tracker, *testingclock.FakeClock, health.Restored) {
	clk := testingclock.NewFakeClock(at)
	tr := health.NewTracker(clk, minuteQuiet)
	return tr, clk, tr.Restore(s, opts)
}

// devices are a whole GPU's device and two MIG placements of each GPU.
func devices(gpus ...string) []health.Device {
	var out []health.Device
	for _, g := range gpus {
		out = append(out, whole(g), mig(g, 0, 2), mig(g, 4, 2))
	}
	return out
}

func allTaints(tr *health.Tracker, devs []health.Device) map[health.Device][]string {
	out := map[health.Device][]string{}
	for _, d := range devs {
		if k := keys(tr.Taints(d)); len(k) > 0 {
			out[d] = k
		}
	}
	return out
}

// A restored tracker publishes the same taints as the one that recorded the
// status and clears them at the recorded time, with no new event: the
// original and the restored one step through the same clock and agree.
func TestRestoreKeepsTaintsAndClearTime(t *testing.T) {
	orig, clk := newTracker(minuteQuiet)
	orig.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	clk.Step(20 * time.Second)
	orig.Observe(health.Event{GPU: gpu1, Kind: health.KindXID, XID: 94, Placement: &inventory.MIGPlacement{Start: 4, Size: 2}})
	clk.Step(10 * time.Second)
	rec := orig.Status()

	tr, rclk, got := restored(rec, clk.Now(), health.RestoreOptions{Present: []string{gpu0, gpu1}})
	assert.Equal(t, health.Restored{Tainted: []string{gpu0, gpu1}}, got)
	devs := devices(gpu0, gpu1)
	want := allTaints(orig, devs)
	require.Len(t, want, 5, "GPU 0 whole and both MIG placements, GPU 1's placement 4:2 and the whole GPU")
	assert.Equal(t, want, allTaints(tr, devs), "the same taints right after the restart")
	assert.Equal(t, orig.Taints(whole(gpu0))[0].TimeAdded, tr.Taints(whole(gpu0))[0].TimeAdded, "the taint keeps the time it was added")
	wantAt, ok := orig.NextExpiry()
	require.True(t, ok)
	gotAt, ok := tr.NextExpiry()
	require.True(t, ok)
	assert.Equal(t, start.Add(time.Minute), gotAt, "a quiet minute after XID 79")
	assert.Equal(t, wantAt, gotAt)
	assert.Equal(t, orig.Status().GPUs, tr.Status().GPUs, "the restored tracker records what the original did")

	for _, step := range []time.Duration{29 * time.Second, time.Second, 19 * time.Second, time.Second} {
		clk.Step(step)
		rclk.Step(step)
		assert.Equal(t, orig.Expire(), tr.Expire(), "at %s", clk.Now().Sub(start))
		assert.Equal(t, allTaints(orig, devs), allTaints(tr, devs), "at %s", clk.Now().Sub(start))
	}
	assert.Empty(t, allTaints(tr, devs), "both cleared at their recorded time")
}

// Damping survives the restart: a GPU that faults again within the flap
// window after the restart gets the doubled quiet period.
func TestRestoreKeepsDamping(t *testing.T) {
	orig, clk := newTracker(minuteQuiet)
	orig.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	clk.Step(2 * time.Minute)
	require.Equal(t, []string{gpu0}, orig.Expire())
	orig.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	rec := orig.Status()
	require.Equal(t, 2*time.Minute, rec.GPUs[0].QuietPeriod.Duration)

	tests := map[string]struct {
		record     func(health.Status) health.Status
		opts       health.RestoreOptions
		wantTaints bool
	}{
		"same boot": {record: func(s health.Status) health.Status { return s }, wantTaints: true},
		"record without flap history: taken from the events": {record: func(s health.Status) health.Status {
			s.GPUs[0].FlapHistory = nil
			return s
		}, wantTaints: true},
		"after a reboot: faults dropped, history kept": {record: func(s health.Status) health.Status { return s },
			opts: health.RestoreOptions{Rebooted: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Present = []string{gpu0}
			tr, rclk, got := restored(tc.record(rec), clk.Now(), tc.opts)
			if tc.wantTaints {
				assert.Equal(t, []string{gpu0}, got.Tainted)
				assert.Equal(t, []string{"gpu.tierra.dev/xid=79:NoSchedule"}, keys(tr.Taints(whole(gpu0))))
				assert.Equal(t, 2*time.Minute, tr.Status().GPUs[0].QuietPeriod.Duration)
			} else {
				assert.Equal(t, health.Restored{Reset: []string{gpu0}}, got)
				assert.Empty(t, tr.Taints(whole(gpu0)))
				assert.Len(t, tr.Records(gpu0), 2, "the events are kept")
			}
			rclk.Step(5 * time.Minute)
			tr.Expire()
			tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
			assert.Equal(t, 4*time.Minute, tr.Status().GPUs[0].QuietPeriod.Duration, "a third fault within the flap window")
		})
	}
}

// A fault on a GPU discovery no longer finds stays, as on a lost GPU, past
// its recorded clear time, until the GPU answers and a quiet period passes.
// A GPU the record says was lost and that answers now is tainted a quiet
// period from the restart.
func TestRestoreAbsentAndLostGPUs(t *testing.T) {
	orig, clk := newTracker(minuteQuiet)
	orig.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	orig.Observe(health.Event{GPU: gpu1, Kind: health.KindGPULost})
	orig.Observe(health.Event{GPU: "GPU-2", Kind: health.KindXID, XID: 13})
	clk.Step(10 * time.Second)

	// GPU 0 is gone, GPU 1 is back, GPU 2 (healthy) is gone.
	tr, rclk, got := restored(orig.Status(), clk.Now(), health.RestoreOptions{Present: []string{gpu1}})
	assert.Equal(t, health.Restored{Tainted: []string{gpu0, gpu1}, Lost: []string{gpu0}}, got)
	assert.Equal(t, []string{gpu0}, faultyLost(tr), "only GPU 0 does not answer")
	healthy, reason := tr.Health(whole(gpu0))
	assert.False(t, healthy)
	assert.Equal(t, "GPU does not answer NVML", reason)
	assert.Equal(t, []string{"gpu.tierra.dev/gpu-lost=Lost:NoSchedule"}, keys(tr.Taints(whole(gpu1))))
	at, ok := tr.NextExpiry()
	require.True(t, ok)
	assert.Equal(t, rclk.Now().Add(time.Minute), at, "GPU 1: a quiet minute from the restart, when it was seen answering")
	assert.Empty(t, tr.Taints(whole("GPU-2")))
	assert.Len(t, tr.Records("GPU-2"), 1)

	rclk.Step(time.Minute)
	assert.Equal(t, []string{gpu1}, tr.Expire())
	rclk.Step(time.Hour)
	assert.Empty(t, tr.Expire(), "the absent GPU stays tainted however long")
	assert.Equal(t, []string{"gpu.tierra.dev/xid=79:NoSchedule"}, keys(tr.Taints(whole(gpu0))))
	require.True(t, tr.SetAnswering(gpu0, true))
	rclk.Step(time.Minute - time.Nanosecond)
	assert.Empty(t, tr.Expire())
	rclk.Step(time.Nanosecond)
	assert.Equal(t, []string{gpu0}, tr.Expire(), "a quiet minute after it answers again")
}

// faultyLost are the GPUs the tracker holds as not answering.
func faultyLost(tr *health.Tracker) []string {
	var out []string
	for _, g := range tr.Status().GPUs {
		if g.State == health.StateLost {
			out = append(out, g.UUID)
		}
	}
	return out
}

// The record goes through the state directory the way a restart reads it.
func TestLoadStatusRestoresWhatWriteStatusWrote(t *testing.T) {
	orig, clk := newTracker(minuteQuiet)
	orig.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	dir := t.TempDir()
	s := orig.Status()
	s.BootID = "boot-1"
	require.NoError(t, health.WriteStatus(dir, s))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "."+health.StatusFile+"-123"), []byte(`{"ver`), 0o600))

	got, quarantined, err := health.LoadStatus(dir, clk.Now())
	require.NoError(t, err)
	assert.Empty(t, quarantined)
	assert.Equal(t, "boot-1", got.BootID)
	tr, _, _ := restored(got, clk.Now(), health.RestoreOptions{Present: []string{gpu0}})
	assert.Equal(t, keys(orig.Taints(whole(gpu0))), keys(tr.Taints(whole(gpu0))))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the leftover of an interrupted write is removed")

	require.NoError(t, os.Remove(filepath.Join(dir, health.StatusFile)))
	_, _, err = health.LoadStatus(dir, clk.Now())
	assert.ErrorIs(t, err, health.ErrNoStatus)
}

// A record that cannot be restored from is moved aside, whole, never
// restored from or overwritten.
func TestLoadStatusQuarantinesWhatItCannotRestore(t *testing.T) {
	tests := map[string]struct {
		data    string
		wantErr error
		wantMsg string
	}{
		"torn":          {data: `{"version":"health.tierra.dev/v1","gpus":[{"uu`, wantErr: health.ErrCorruptStatus, wantMsg: "decode health status"},
		"other version": {data: `{"version":"health.tierra.dev/v9","gpus":[]}`, wantErr: health.ErrStatusVersion, wantMsg: `version "health.tierra.dev/v9"`},
		"no uuid": {data: `{"version":"health.tierra.dev/v1","gpus":[{"state":"Tainted"}]}`,
			wantErr: health.ErrCorruptStatus, wantMsg: "gpus[0]: no uuid"},
		"GPU twice": {data: `{"version":"health.tierra.dev/v1","gpus":[{"uuid":"GPU-0","state":"Healthy"},{"uuid":"GPU-0","state":"Healthy"}]}`,
			wantErr: health.ErrCorruptStatus, wantMsg: "GPU GPU-0 recorded twice"},
		"unknown state": {data: `{"version":"health.tierra.dev/v1","gpus":[{"uuid":"GPU-0","state":"Sick"}]}`,
			wantErr: health.ErrCorruptStatus, wantMsg: `unknown state "Sick"`},
		"unknown effect": {data: `{"version":"health.tierra.dev/v1","gpus":[{"uuid":"GPU-0","state":"Tainted","faults":[{"key":"k","value":"v","effect":"Maybe"}]}]}`,
			wantErr: health.ErrCorruptStatus, wantMsg: `faults[0]: unknown effect "Maybe"`},
		"negative quiet period": {data: `{"version":"health.tierra.dev/v1","gpus":[{"uuid":"GPU-0","state":"Tainted","quietPeriod":"-1s"}]}`,
			wantErr: health.ErrCorruptStatus, wantMsg: "negative quiet period"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, health.StatusFile), []byte(tc.data), 0o600))
			s, quarantined, err := health.LoadStatus(dir, start)
			require.ErrorIs(t, err, tc.wantErr)
			assert.ErrorContains(t, err, tc.wantMsg)
			assert.Empty(t, s.GPUs)
			assert.Equal(t, filepath.Join(dir, health.QuarantineDir, health.StatusFile+".20260701T120000.000000000Z"), quarantined)
			moved, err := os.ReadFile(quarantined)
			require.NoError(t, err)
			assert.Equal(t, tc.data, string(moved), "moved aside whole")
			_, err = os.Stat(filepath.Join(dir, health.StatusFile))
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}
