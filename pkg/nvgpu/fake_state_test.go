//go:build cgo

package nvgpu_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func TestFakeStatePersistsAcrossProcesses(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Setenv(nvgpu.FakeStateEnv, filepath.Join(t.TempDir(), "state.json"))
	f, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	require.NoError(t, err)
	m, err := f.Machine(ctx)
	require.NoError(t, err)
	gpu := m.GPUs[2].UUID
	require.NoError(t, f.SetMIGMode(ctx, gpu, true))
	first, err := f.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu, Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 0, Size: 1}})
	require.NoError(t, err)
	second, err := f.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu, Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 1, Size: 1}})
	require.NoError(t, err)
	require.NoError(t, f.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{GPUUUID: gpu, GPUInstanceID: first.GPUInstanceID, ComputeInstanceID: first.ComputeInstances[0].ID}))
	require.NoError(t, f.DestroyGPUInstance(ctx, gpu, first.GPUInstanceID))
	require.NoError(t, f.SetComputeMode(ctx, m.GPUs[0].UUID, inventory.ComputeModeExclusiveProcess))

	// A new process: the same machine, restored from the file.
	again, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	require.NoError(t, err)
	m2, err := again.Machine(ctx)
	require.NoError(t, err)
	require.NotNil(t, m2.GPUs[2].MIG)
	require.Len(t, m2.GPUs[2].MIG.Instances, 1)
	got := m2.GPUs[2].MIG.Instances[0]
	assert.Equal(t, second.GPUInstanceID, got.GPUInstanceID)
	assert.Equal(t, second.UUID, got.UUID)
	assert.Equal(t, inventory.ComputeModeExclusiveProcess, m2.GPUs[0].ComputeMode)
	third, err := again.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu, Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 0, Size: 1}})
	require.NoError(t, err)
	assert.Greater(t, third.GPUInstanceID, second.GPUInstanceID, "instance ids are not reused")
}

// EnableMIG turns on MIG on every capable GPU; the next opener of the
// state file sees it.
func TestEnableMIGPersists(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Setenv(nvgpu.FakeStateEnv, filepath.Join(t.TempDir(), "state.json"))
	opts := nvgpu.Options{Machine: "fake:mixed"}
	g, err := nvgpu.New(ctx, opts)
	require.NoError(t, err)
	m, err := nvgpu.EnableMIG(ctx, g)
	require.NoError(t, err)
	require.NoError(t, g.Close())
	capable := 0 // mixed: H100s and A100s, all MIG-capable
	for _, gpu := range m.GPUs {
		assert.Equal(t, gpu.MIGCapable, gpu.MIGEnabled, "GPU %d", gpu.Index)
		if gpu.MIGCapable {
			capable++
		}
	}
	require.Positive(t, capable)

	again, err := nvgpu.New(ctx, opts)
	require.NoError(t, err)
	defer again.Close()
	m2, err := again.Machine(ctx)
	require.NoError(t, err)
	for i, gpu := range m2.GPUs {
		assert.Equal(t, m.GPUs[i].MIGEnabled, gpu.MIGEnabled, "GPU %d after reopening", i)
	}
}
