//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// recordFaults injects XID 13 and XID 79 on GPU 2 and takes GPU 5 off the
// bus of a fake DGX H200, feeds what its event watch reports to a health
// tracker, as the plugin does, and writes the tracker's status into a
// state directory, which it returns with the two GPUs' UUIDs.
func recordFaults(t *testing.T) (dir, gpu2, gpu5 string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{EventPoll: 10 * time.Millisecond})
	require.NoError(t, err)
	defer func() { assert.NoError(t, f.Close()) }()
	m, err := f.Machine(ctx)
	require.NoError(t, err)
	events, err := f.Events(ctx)
	require.NoError(t, err)
	require.NoError(t, f.InjectXID(2, 13))
	require.NoError(t, f.InjectXID(2, 79))
	require.NoError(t, f.LoseGPU(5))

	tracker := health.NewTracker(clock.RealClock{}, &v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: 2 * time.Minute}})
	for range 3 {
		select {
		case ev := <-events:
			kind := health.KindXID
			if ev.Type == nvgpu.EventGPULost {
				kind = health.KindGPULost
			}
			tracker.Observe(health.Event{GPU: ev.GPUUUID, Kind: kind, XID: ev.XID})
		case <-time.After(5 * time.Second):
			t.Fatal("the fake's event watch reported fewer than 3 events")
		}
	}
	dir = t.TempDir()
	require.NoError(t, health.WriteStatus(dir, tracker.Status()))
	return dir, m.GPUs[2].UUID, m.GPUs[5].UUID
}

func TestInspectShowsRecordedHealthTable(t *testing.T) {
	dir, gpu2, gpu5 := recordFaults(t)
	out, err := runInspectCommand(t, "--machine", "fake:dgxh200", "--state-dir", dir, "--events", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "Driver ", "the machine's table comes first")
	assert.Contains(t, out, "Health recorded by the plugin at ")
	assert.Regexp(t, `(?m)^2\s+Tainted\s+gpu.tierra.dev/xid=79:NoSchedule\s+in (1m5\d|2m0)s \(quiet 2m0s\)\s+`+regexp.QuoteMeta(gpu2)+`$`, out)
	assert.Regexp(t, `(?m)^5\s+Lost\s+gpu.tierra.dev/gpu-lost=Lost:NoSchedule\s+after it answers NVML again.*`+regexp.QuoteMeta(gpu5)+`$`, out)
	assert.Regexp(t, `(?m)^0\s+Healthy\s+-\s+-\s+GPU-`, out)
	assert.Regexp(t, `(?m)^2\s+\S+\s+\d+s\s+XID 79\s+NoSchedule$`, out)
	assert.NotContains(t, out, "XID 13", "--events 1 shows the last event only")
	assert.Regexp(t, `(?m)^5\s+\S+\s+\d+s\s+GPULost\s+NoSchedule$`, out)
}

func TestInspectShowsRecordedHealthJSONAndYAML(t *testing.T) {
	dir, gpu2, gpu5 := recordFaults(t)
	decoders := map[string]func(string, *inspected) error{
		"json": func(s string, v *inspected) error {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.DisallowUnknownFields()
			return dec.Decode(v)
		},
		"yaml": func(s string, v *inspected) error { return yaml.UnmarshalStrict([]byte(s), v) },
	}
	for format, decode := range decoders {
		t.Run(format, func(t *testing.T) {
			out, err := runInspectCommand(t, "--machine", "fake:dgxh200", "--state-dir", dir, "-o", format)
			require.NoError(t, err)
			var got inspected
			require.NoError(t, decode(out, &got))
			assert.Len(t, got.GPUs, 8, "the machine is still there")
			require.NotNil(t, got.Health)
			require.Len(t, got.Health.GPUs, 8)
			g2, g5 := got.Health.GPUs[2], got.Health.GPUs[5]
			assert.Equal(t, gpu2, g2.UUID)
			assert.Equal(t, health.StateTainted, g2.State)
			require.Len(t, g2.Events, 2, "every event, not only the table's last ones")
			assert.Equal(t, []v1alpha1.HealthAction{v1alpha1.HealthIgnore, v1alpha1.HealthNoSchedule}, []v1alpha1.HealthAction{g2.Events[0].Action, g2.Events[1].Action})
			assert.Equal(t, uint64(79), g2.Events[1].XID)
			require.NotNil(t, g2.ClearsAt)
			assert.Equal(t, gpu5, g5.UUID)
			assert.Equal(t, health.StateLost, g5.State)
			assert.Equal(t, health.StateHealthy, got.Health.GPUs[0].State)
		})
	}
}

func TestInspectStateDirErrors(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"no record":       {args: []string{"--state-dir", t.TempDir()}, wantErr: "no health status recorded (is it the kubelet plugin's --state-dir"},
		"negative events": {args: []string{"--state-dir", t.TempDir(), "--events", "-1"}, wantErr: "--events -1: want 0 or more"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := runInspectCommand(t, append([]string{"--machine", "fake:dgxh200"}, tc.args...)...)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
