package plugin_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
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

// A claim prepared on a GPU that is lost afterwards still unprepares: the
// lost GPU took its compute mode with it, and the pod must be able to go.
func TestUnprepareOnLostGPU(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining)
	claim := h.claim(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj(), nil)
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-train"].Error)
	require.Equal(t, "gpu-0", resp.Claims["uid-train"].Devices[0].DeviceName)

	require.NoError(t, h.gpus.LoseGPU(0))
	un, err := h.unprepare(claim)
	require.NoError(t, err)
	require.Empty(t, un.Claims["uid-train"].Error, "unprepare on a lost GPU")
	h.assertNothingPrepared(t)
}

// An MPS daemon no checkpoint record holds (its claim's record was lost)
// is stopped when the plugin starts.
func TestRestartStopsOrphanMPSDaemon(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	gpu := h.gpu(t, 2).UUID
	require.NoError(t, os.MkdirAll(filepath.Join(h.cfg.StateDir, "mps", gpu, "pipe"), 0o755))
	h.restart(t)
	var quit bool
	for _, c := range h.runner.Commands() {
		if c.Stdin == "quit\n" && slices.Contains(c.Env, "CUDA_VISIBLE_DEVICES="+gpu) {
			quit = true
		}
	}
	require.True(t, quit, "no quit sent to the orphan daemon of %s: %v", gpu, h.runner.Commands())
	_, err := os.Stat(filepath.Join(h.cfg.StateDir, "mps", gpu))
	require.ErrorIs(t, err, os.ErrNotExist, "the orphan daemon's directory is still there")
}

// An orphan whose quit fails (no daemon answers) is forgotten, not retried
// at every start.
func TestRestartForgetsOrphanThatDoesNotQuit(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	gpu := h.gpu(t, 1).UUID
	require.NoError(t, os.MkdirAll(filepath.Join(h.cfg.StateDir, "mps", gpu, "pipe"), 0o755))
	h.runner.Err = errors.New("no MPS daemon is running")
	h.restart(t)
	_, err := os.Stat(filepath.Join(h.cfg.StateDir, "mps", gpu))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// --fake-mig-nodes (demo only) puts a matching node's fake GPUs into MIG
// mode at start, so one DaemonSet gives a kind demo's inference node MIG.
func TestFakeMIGNodes(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference, func(h *harness) {
		h.cfg.Machine, h.cfg.FakeMIGNodes = "fake:dgxh200", v1alpha1.NodeTierLabel+"="+v1alpha1.TierInference
	})
	names := map[string]bool{}
	for _, s := range h.publishedSlices(t) {
		for _, d := range s.Spec.Devices {
			names[d.Name] = true
		}
	}
	require.False(t, names["gpu-0"], "GPU 0 is published whole: it was not put into MIG mode")
	require.True(t, names["gpu-0-1g-18gb-0"], "GPU 0 publishes MIG slices")
}

func TestFakeMIGNodesValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  plugin.Config
		want string
	}{
		"real GPUs":    {cfg: plugin.Config{NodeName: "n", FakeMIGNodes: "a=b"}, want: "fake machines only"},
		"bad selector": {cfg: plugin.Config{NodeName: "n", Machine: "fake:dgxh200", FakeMIGNodes: "a=b=c"}, want: "want a label selector"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, tc.cfg.Validate(), tc.want)
		})
	}
	ok := plugin.Config{NodeName: "n", Machine: "fake:dgxh200", FakeMIGNodes: "tierra.dev/tier in (inference)"}
	require.NoError(t, ok.Validate())
}
