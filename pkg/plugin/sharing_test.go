package plugin_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestPrepareMPSOverSocket(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev, withPolicy(tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS)))
	const mps = `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":50}}}`
	claim := h.claim(t, tierratest.MakeClaim("mps", "team-a").UID("uid-mps").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Config(mps).Obj(), nil)

	resp, err := h.prepare(claim)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-mps"].Error)
	cmds := h.runner.Commands()
	require.Len(t, cmds, 2)
	assert.Equal(t, []string{"nvidia-cuda-mps-control", "-d"}, cmds[0].Argv)
	assert.Contains(t, cmds[0].Env, "CUDA_VISIBLE_DEVICES="+h.gpu(t, 0).UUID)
	assert.Equal(t, "set_default_active_thread_percentage 50\n", cmds[1].Stdin, "the daemon enforces the limit for every client")
	spec := readSpec(t, h)
	assert.Contains(t, spec, "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50")
	assert.Contains(t, spec, "/tmp/nvidia-mps")
	assert.Contains(t, spec, "/dev/shm")

	_, err = h.unprepare(claim)
	require.NoError(t, err)
	cmds = h.runner.Commands()
	require.Len(t, cmds, 3)
	assert.Equal(t, "quit\n", cmds[2].Stdin, "the daemon quits with the GPU's last claim")
	h.assertNothingPrepared(t)
}
