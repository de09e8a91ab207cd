package plugin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// A GPU that falls off the bus (NVML reports it lost) is no longer
// published: the plugin republishes the GPUs that are left, so the
// scheduler stops placing claims on it.
func TestLostGPUIsRepublishedAway(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining)
	published := func() map[string]bool {
		names := map[string]bool{}
		for _, s := range h.publishedSlices(t) {
			for _, d := range s.Spec.Devices {
				names[d.Name] = true
			}
		}
		return names
	}
	require.True(t, published()["gpu-3"], "the training tier publishes GPU 3 whole")
	// The plugin registers for events right after it starts serving.
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, h.gpus.LoseGPU(3))
	require.Eventually(t, func() bool {
		names := published()
		return !names["gpu-3"] && names["gpu-2"] && names["gpu-4"]
	}, 10*time.Second, 20*time.Millisecond, "GPU 3 is still published after it was lost")
}
