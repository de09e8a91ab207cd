package plugin_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestRestartKeepsClaimsAndRemovesLeftovers(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	claim := h.claim(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).
		Selector(`device.attributes["gpu.tierra.dev"].migProfile == "3g.71gb"`).Obj(), nil)
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	ids := resp.Claims["uid-infer"].Devices[0].CdiDeviceIds

	// A MIG instance no record owns or planned (an admin's, kept) and a
	// CDI spec without a record (a leftover, deleted).
	admin, err := h.gpus.CreateMIGInstance(h.ctx, nvgpu.CreateMIGOptions{GPUUUID: h.gpu(t, 5).UUID, Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 0, Size: 1}})
	require.NoError(t, err)
	orphan := filepath.Join(h.cfg.CDIDir, "gpu.tierra.dev-claim_uid-orphan.json")
	spec, err := os.ReadFile(filepath.Join(h.cfg.CDIDir, specFileName(t, h)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(orphan, spec, 0o644))

	h.restart(t)

	assert.Len(t, h.gpu(t, 5).MIG.Instances, 1, "an instance Tierra did not create is kept")
	_, err = os.Stat(orphan)
	assert.ErrorIs(t, err, os.ErrNotExist, "the CDI spec without a record is deleted")
	assert.Len(t, h.gpu(t, 4).MIG.Instances, 1, "the prepared claim keeps its instance")
	again, err := h.prepare(claim)
	require.NoError(t, err)
	assert.Equal(t, ids, again.Claims["uid-infer"].Devices[0].CdiDeviceIds, "the claim is still prepared after the restart")
	_, err = h.unprepare(claim)
	require.NoError(t, err)
	ref := nvgpu.ComputeInstanceRef{GPUUUID: h.gpu(t, 5).UUID, GPUInstanceID: admin.GPUInstanceID, ComputeInstanceID: admin.ComputeInstances[0].ID}
	require.NoError(t, h.gpus.DestroyComputeInstance(h.ctx, ref))
	require.NoError(t, h.gpus.DestroyGPUInstance(h.ctx, ref.GPUUUID, ref.GPUInstanceID))
	h.assertNothingPrepared(t)
}

func specFileName(t *testing.T, h *harness) string {
	entries, err := os.ReadDir(h.cfg.CDIDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	return entries[0].Name()
}
