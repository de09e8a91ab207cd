package plugin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
)

// The plugin records its GPUs' health in the state directory on every
// event and every change of taints: tierra inspect reads it there.
func TestPluginRecordsHealthInTheStateDir(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()))
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	m, err := h.gpus.Machine(h.ctx)
	require.NoError(t, err)
	gpu2, gpu5 := m.GPUs[2].UUID, m.GPUs[5].UUID
	s, err := health.ReadStatus(h.cfg.StateDir)
	require.NoError(t, err, "written when the watch starts")
	assert.Empty(t, s.GPUs, "nothing happened yet")

	require.NoError(t, h.gpus.InjectXID(2, 13))
	require.NoError(t, h.gpus.InjectXID(2, 79))
	require.NoError(t, h.gpus.LoseGPU(5))
	var byUUID map[string]health.GPUStatus
	status := func() map[string]health.GPUStatus {
		s, err := health.ReadStatus(h.cfg.StateDir)
		require.NoError(t, err)
		out := map[string]health.GPUStatus{}
		for _, g := range s.GPUs {
			out[g.UUID] = g
		}
		return out
	}
	require.Eventually(t, func() bool {
		byUUID = status()
		return byUUID[gpu2].State == health.StateTainted && len(byUUID[gpu2].Events) == 2 && byUUID[gpu5].State == health.StateLost
	}, 5*time.Second, 10*time.Millisecond, "recorded: %+v", byUUID)
	g2 := byUUID[gpu2]
	assert.Equal(t, []string{"XID 13", "XID 79"}, []string{g2.Events[0].String(), g2.Events[1].String()})
	assert.Equal(t, []v1alpha1.HealthAction{v1alpha1.HealthIgnore, v1alpha1.HealthNoSchedule}, []v1alpha1.HealthAction{g2.Events[0].Action, g2.Events[1].Action})
	require.Len(t, g2.Faults, 1)
	assert.Equal(t, health.XIDTaintKey+"=79:NoSchedule", g2.Faults[0].String())
	require.NotNil(t, g2.ClearsAt)
	assert.Equal(t, healthQuiet, g2.QuietPeriod.Duration)
	assert.Equal(t, health.KindGPULost, byUUID[gpu5].Events[0].Kind)

	require.NoError(t, h.gpus.RestoreGPU(5))
	require.Eventually(t, func() bool {
		byUUID = status()
		return byUUID[gpu2].State == health.StateHealthy && byUUID[gpu5].State == health.StateHealthy
	}, 10*time.Second, 10*time.Millisecond, "both clear after the quiet period: %+v", byUUID)
	assert.Len(t, byUUID[gpu2].Events, 2, "the events stay on record after the clear")
	assert.Empty(t, byUUID[gpu2].Faults)
}
