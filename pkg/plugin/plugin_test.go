package plugin_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestRegistration(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	info, err := h.reg.GetInfo(h.ctx, &registerapi.InfoRequest{})
	require.NoError(t, err)
	assert.Equal(t, registerapi.DRAPlugin, info.Type)
	assert.Equal(t, v1alpha1.DriverName, info.Name)
	assert.Equal(t, filepath.Join(h.cfg.PluginDataDir, "dra.sock"), info.Endpoint)
}

func TestPrepareExclusiveOverSocket(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	claim := h.claim(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassGPU).Obj(), nil)

	start := time.Now()
	resp, err := h.prepare(claim)
	t.Logf("NodePrepareResources (exclusive) took %v", time.Since(start))
	require.NoError(t, err)
	got := resp.Claims["uid-train"]
	require.NotNil(t, got)
	require.Empty(t, got.Error)
	require.Len(t, got.Devices, 1)
	assert.Equal(t, "gpu-0", got.Devices[0].DeviceName)
	assert.Equal(t, []string{"gpu"}, got.Devices[0].RequestNames)
	assert.Equal(t, []string{"gpu.tierra.dev/claim=uid-train-gpu-gpu-0"}, got.Devices[0].CdiDeviceIds)
	assert.Equal(t, inventory.ComputeModeExclusiveProcess, h.gpu(t, 0).ComputeMode)
	spec := readSpec(t, h)
	assert.Contains(t, spec, "/dev/nvidia0")
	assert.Contains(t, spec, "NVIDIA_VISIBLE_DEVICES="+h.gpu(t, 0).UUID)

	again, err := h.prepare(claim)
	require.NoError(t, err)
	assert.Equal(t, got.Devices[0].CdiDeviceIds, again.Claims["uid-train"].Devices[0].CdiDeviceIds, "prepare twice")

	for range 2 {
		start = time.Now()
		un, err := h.unprepare(claim)
		t.Logf("NodeUnprepareResources (exclusive) took %v", time.Since(start))
		require.NoError(t, err)
		assert.Empty(t, un.Claims["uid-train"].Error)
	}
	h.assertNothingPrepared(t)
}

func TestPrepareMIGOverSocket(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	claim := h.claim(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).
		Selector(`device.attributes["gpu.tierra.dev"].migProfile == "3g.71gb"`).Obj(), nil)
	device := claim.Status.Allocation.Devices.Results[0].Device

	start := time.Now()
	resp, err := h.prepare(claim)
	t.Logf("NodePrepareResources (MIG %s) took %v", device, time.Since(start))
	require.NoError(t, err)
	got := resp.Claims["uid-infer"]
	require.Empty(t, got.Error)
	require.Len(t, got.Devices, 1)
	assert.Equal(t, []string{"gpu.tierra.dev/claim=uid-infer-mig-" + device}, got.Devices[0].CdiDeviceIds)
	parent := h.gpu(t, 4)
	require.Len(t, parent.MIG.Instances, 1, "MIG instance created on GPU 4")
	inst := parent.MIG.Instances[0]
	assert.Equal(t, "3g.71gb", inst.ProfileName)
	assert.Equal(t, "gpu-4-3g-71gb-4", device, "3g slices are packed at the top")
	assert.Equal(t, inventory.MIGPlacement{Start: 4, Size: 4}, inst.Placement, "instance at the allocated placement")
	spec := readSpec(t, h)
	assert.Contains(t, spec, "NVIDIA_VISIBLE_DEVICES="+inst.UUID)
	assert.Contains(t, spec, "/dev/nvidia-caps/nvidia-cap")
	assert.Contains(t, spec, "/dev/nvidia4")

	_, err = h.prepare(claim)
	require.NoError(t, err)
	assert.Len(t, h.gpu(t, 4).MIG.Instances, 1, "prepare twice creates nothing")
	for range 2 {
		un, err := h.unprepare(claim)
		require.NoError(t, err)
		assert.Empty(t, un.Claims["uid-infer"].Error)
	}
	h.assertNothingPrepared(t)
}

func TestPrepareRefusesBadClaimsOverSocket(t *testing.T) {
	tests := map[string]struct {
		tier    string
		config  string
		mutate  func(*resourceapi.AllocationResult)
		wantErr []string
	}{
		"malformed opaque config": {
			config:  `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"Exclusive","mps":{"defaultActiveThreadPercentag":5}}}`,
			wantErr: []string{"ns/bad", `unknown field "sharing.mps.defaultActiveThreadPercentag"`},
		},
		"unknown device": {
			mutate:  func(r *resourceapi.AllocationResult) { r.Devices.Results[0].Device = "gpu-99" },
			wantErr: []string{"ns/bad", `device "gpu-99" is not published`},
		},
		"another driver's device": {
			mutate:  func(r *resourceapi.AllocationResult) { r.Devices.Results[0].Driver = "net.example.com" },
			wantErr: []string{"ns/bad", "net.example.com/node-1/gpu-0", "no device of driver gpu.tierra.dev"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := startPlugin(t, v1alpha1.TierInference)
			w := tierratest.MakeClaim("bad", "ns").UID("uid-bad").Request("gpu", tiers.ClassGPU)
			if tc.config != "" {
				w.Config(tc.config)
			}
			claim := h.claim(t, w.Obj(), tc.mutate)
			resp, err := h.prepare(claim)
			require.NoError(t, err)
			for _, s := range tc.wantErr {
				assert.Contains(t, resp.Claims["uid-bad"].Error, s)
			}
			assert.Empty(t, resp.Claims["uid-bad"].Devices)
			h.assertNothingPrepared(t)
		})
	}
}

func TestPrepareRefusesUnallocatedClaim(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	claim, err := h.client.ResourceV1().ResourceClaims("ns").Create(h.ctx,
		tierratest.MakeClaim("pending", "ns").UID("uid-pending").Request("gpu", tiers.ClassGPU).Obj(), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = h.prepare(claim)
	require.ErrorContains(t, err, "ns/pending not allocated")
	h.assertNothingPrepared(t)
}

func TestPrepareRefusesCrossTenantTimeSlicing(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	class := tiers.ClassName(v1alpha1.TierDev)
	a := h.claim(t, tierratest.MakeClaim("a", "team-a").UID("uid-a").Request("gpu", class).Obj(), nil)
	b := h.claim(t, tierratest.MakeClaim("b", "team-b").UID("uid-b").Request("gpu", class).Obj(), nil)
	// No tenant slot selector (admission adds it; this claim bypasses it):
	// the allocator shares GPU 0's first slot (research's) between the tenants.
	require.Equal(t, "gpu-0-tenant-research", b.Status.Allocation.Devices.Results[0].Device, "the allocator shares GPU 0")

	resp, err := h.prepare(a)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-a"].Error)
	resp, err = h.prepare(b)
	require.NoError(t, err)
	msg := resp.Claims["uid-b"].Error
	for _, s := range []string{`tenant "product"`, `tenant "research"`, "team-a/a", "team-b/b", h.gpu(t, 0).UUID} {
		assert.Contains(t, msg, s)
	}
	entries, err := os.ReadDir(h.cfg.CDIDir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "only claim a has a CDI spec")

	_, err = h.unprepare(a, b)
	require.NoError(t, err)
	h.assertNothingPrepared(t)
}

func readSpec(t *testing.T, h *harness) string {
	entries, err := os.ReadDir(h.cfg.CDIDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	data, err := os.ReadFile(filepath.Join(h.cfg.CDIDir, entries[0].Name()))
	require.NoError(t, err)
	return string(data)
}
