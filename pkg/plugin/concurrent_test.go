package plugin_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// TestPrepareManyClaimsInOneCall fills the node in one NodePrepareResources:
// every whole GPU and every 1g slice of the MIG GPUs, prepared concurrently.
func TestPrepareManyClaimsInOneCall(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	var claims []*resourceapi.ResourceClaim
	for i := range 4 {
		claims = append(claims, h.claim(t, tierratest.MakeClaim(fmt.Sprintf("whole-%d", i), "ns").UID(fmt.Sprintf("uid-whole-%d", i)).Request("gpu", tiers.ClassGPU).Obj(), nil))
	}
	for i := range 4 * 7 {
		claims = append(claims, h.claim(t, tierratest.MakeClaim(fmt.Sprintf("mig-%d", i), "ns").UID(fmt.Sprintf("uid-mig-%d", i)).Request("mig", tiers.ClassMIG).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj(), nil))
	}

	resp, err := h.prepare(claims...)
	require.NoError(t, err)
	require.Len(t, resp.Claims, len(claims))
	for uid, c := range resp.Claims {
		assert.Empty(t, c.Error, uid)
		assert.Len(t, c.Devices, 1, uid)
	}
	m, err := h.gpus.Machine(h.ctx)
	require.NoError(t, err)
	for _, g := range m.GPUs[:4] {
		assert.Equal(t, inventory.ComputeModeExclusiveProcess, g.ComputeMode, "GPU %d", g.Index)
	}
	for _, g := range m.GPUs[4:] {
		assert.Len(t, g.MIG.Instances, 7, "GPU %d full of 1g instances", g.Index)
	}

	un, err := h.unprepare(claims...)
	require.NoError(t, err)
	for uid, c := range un.Claims {
		assert.Empty(t, c.Error, uid)
	}
	h.assertNothingPrepared(t)
}
