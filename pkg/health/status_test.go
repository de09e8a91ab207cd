package health_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// faultyTracker has GPU 0 tainted by XID 79 after an ignored XID 13,
// GPU 1 lost, and GPU 2 tainted on one MIG instance then cleared.
func faultyTracker(t *testing.T) (*health.Tracker, time.Time) {
	t.Helper()
	tr, clk := newTracker(&v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: time.Minute}})
	tr.Observe(health.Event{GPU: "GPU-2", Kind: health.KindXID, XID: 94, Placement: &inventory.MIGPlacement{Start: 4, Size: 2}})
	clk.Step(2 * time.Minute)
	require.Equal(t, []string{"GPU-2"}, tr.Expire())
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 13})
	clk.Step(time.Second)
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	tr.Observe(health.Event{GPU: gpu1, Kind: health.KindGPULost})
	clk.Step(10 * time.Second)
	return tr, clk.Now()
}

func TestStatusSaysStateTaintsClearTimeAndEvents(t *testing.T) {
	tr, now := faultyTracker(t)
	s := tr.Status()
	assert.Equal(t, health.StatusVersion, s.Version)
	assert.Equal(t, now, s.Time)
	require.Len(t, s.GPUs, 3)
	g0, g1, g2 := s.GPUs[0], s.GPUs[1], s.GPUs[2]
	assert.Equal(t, []string{gpu0, gpu1, "GPU-2"}, []string{g0.UUID, g1.UUID, g2.UUID}, "sorted by UUID")

	assert.Equal(t, health.StateTainted, g0.State)
	require.Len(t, g0.Faults, 1)
	assert.Equal(t, "gpu.tierra.dev/xid=79:NoSchedule", g0.Faults[0].String())
	require.NotNil(t, g0.ClearsAt)
	assert.Equal(t, now.Add(-10*time.Second).Add(time.Minute), *g0.ClearsAt, "a quiet minute after XID 79")
	assert.Equal(t, time.Minute, g0.QuietPeriod.Duration)
	require.Len(t, g0.Events, 2)
	assert.Equal(t, []string{"XID 13", "XID 79"}, []string{g0.Events[0].String(), g0.Events[1].String()})
	assert.Equal(t, []v1alpha1.HealthAction{v1alpha1.HealthIgnore, v1alpha1.HealthNoSchedule}, []v1alpha1.HealthAction{g0.Events[0].Action, g0.Events[1].Action})

	assert.Equal(t, health.StateLost, g1.State)
	assert.Nil(t, g1.ClearsAt, "a lost GPU has no clear time until it answers")
	assert.Equal(t, "gpu.tierra.dev/gpu-lost=Lost:NoSchedule", g1.Faults[0].String())

	assert.Equal(t, health.StateHealthy, g2.State, "cleared after its quiet period")
	assert.Empty(t, g2.Faults)
	assert.Nil(t, g2.ClearsAt)
	require.Len(t, g2.Events, 1, "the events outlive the taint")
	assert.Equal(t, "XID 94 (MIG slices 4:2)", g2.Events[0].String())
}

func TestStatusRoundTripsThroughTheStateDir(t *testing.T) {
	tr, _ := faultyTracker(t)
	dir := t.TempDir()
	_, err := health.ReadStatus(dir)
	require.ErrorIs(t, err, health.ErrNoStatus)

	want := tr.Status()
	require.NoError(t, health.WriteStatus(dir, want))
	got, err := health.ReadStatus(dir)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
	assert.Equal(t, health.StatusFile, entries[0].Name())

	require.NoError(t, health.WriteStatus(dir, health.Status{Version: health.StatusVersion}))
	got, err = health.ReadStatus(dir)
	require.NoError(t, err)
	assert.Empty(t, got.GPUs, "a later write replaces the file")
}

func TestReadStatusRefusesWhatItCannotRead(t *testing.T) {
	tests := map[string]struct {
		data    string
		wantErr string
	}{
		"other version": {data: `{"version":"health.tierra.dev/v9","gpus":[]}`, wantErr: `version "health.tierra.dev/v9", want "health.tierra.dev/v1"`},
		"not JSON":      {data: `{"version":`, wantErr: "decode health status"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, health.StatusFile), []byte(tc.data), 0o600))
			_, err := health.ReadStatus(dir)
			require.ErrorContains(t, err, tc.wantErr)
			assert.NotErrorIs(t, err, health.ErrNoStatus)
		})
	}
}

func TestReportJoinsDiscoveryAndTheRecord(t *testing.T) {
	tr, now := faultyTracker(t)
	// GPU 1 is lost, so discovery does not see it; GPU-3 had no event.
	m := inventory.Machine{GPUs: []inventory.GPU{{Index: 3, UUID: "GPU-3"}, {Index: 0, UUID: gpu0}, {Index: 2, UUID: "GPU-2"}}}
	r := health.Report(m, tr.Status())
	assert.Equal(t, now, r.RecordedAt)
	type row struct {
		index int
		uuid  string
		state health.State
	}
	var got []row
	for _, g := range r.GPUs {
		got = append(got, row{g.Index, g.UUID, g.State})
	}
	assert.Equal(t, []row{{0, gpu0, health.StateTainted}, {2, "GPU-2", health.StateHealthy}, {3, "GPU-3", health.StateHealthy}, {-1, gpu1, health.StateLost}}, got)

	var out bytes.Buffer
	require.NoError(t, r.WriteTable(&out, now.Add(20*time.Second), 5))
	lines := strings.Split(out.String(), "\n")
	assert.Contains(t, lines[0], "(20s ago)")
	assert.Regexp(t, `^0\s+Tainted\s+gpu.tierra.dev/xid=79:NoSchedule\s+in 30s \(quiet 1m0s\)\s+GPU-0$`, lines[2])
	assert.Regexp(t, `^2\s+Healthy\s+-\s+-\s+GPU-2$`, lines[3])
	assert.Regexp(t, `^-\s+Lost\s+gpu.tierra.dev/gpu-lost=Lost:NoSchedule\s+after it answers NVML again`, lines[5])
	assert.Contains(t, out.String(), "Last events (at most 5 per GPU, newest first)")
	events := strings.Join(lines[7:], "\n")
	assert.Regexp(t, `0\s+\S+\s+30s\s+XID 79\s+NoSchedule\n0\s+\S+\s+31s\s+XID 13\s+Ignore\n2\s+\S+\s+2m31s\s+XID 94 \(MIG slices 4:2\)\s+NoSchedule\n-\s+\S+\s+30s\s+GPULost\s+NoSchedule`, events)

	out.Reset()
	require.NoError(t, r.WriteTable(&out, now, 1))
	assert.NotContains(t, out.String(), "XID 13", "only the last event per GPU")
	assert.Contains(t, out.String(), "XID 79")
}
