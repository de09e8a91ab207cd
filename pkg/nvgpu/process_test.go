//go:build cgo

package nvgpu_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// checkProcessUse holds what every machine's process use must satisfy,
// fake or real: each entry names a discovered GPU (and a live MIG instance
// of it), and NVML's utilization is a percentage, unknown inside MIG.
func checkProcessUse(t *testing.T, m inventory.Machine, use []nvgpu.ProcessUse) {
	t.Helper()
	for _, u := range use {
		gpu, ok := m.GPU(u.GPUUUID)
		require.True(t, ok, "process %d is on discovered GPU %s", u.PID, u.GPUUUID)
		assert.Equal(t, gpu.Index, u.GPUIndex)
		assert.Positive(t, u.PID)
		assert.True(t, u.SMUtilPercent >= 0 && u.SMUtilPercent <= 100, "SM %% of %d in range", u.PID)
		if !u.SMUtilKnown {
			assert.Zero(t, u.SMUtilPercent)
		}
		if !u.IsMIG() {
			assert.Empty(t, u.MIGUUID)
			assert.Equal(t, -1, u.ComputeInstanceID)
			assert.False(t, gpu.MIGEnabled, "a GPU in MIG mode runs processes in instances only")
			continue
		}
		assert.False(t, u.SMUtilKnown, "NVML takes no per-process samples inside MIG")
		require.NotNil(t, gpu.MIG)
		i := slices.IndexFunc(gpu.MIG.Instances, func(in inventory.MIGInstance) bool {
			return in.GPUInstanceID == u.GPUInstanceID
		})
		require.GreaterOrEqual(t, i, 0, "process %d is in live GPU instance %d", u.PID, u.GPUInstanceID)
		if in := gpu.MIG.Instances[i]; len(in.ComputeInstances) > 0 && in.ComputeInstances[0].ID == u.ComputeInstanceID {
			assert.Equal(t, in.UUID, u.MIGUUID)
		}
	}
}

// The conformance check over the real NVML: read-only, whatever runs there.
func TestProcessUseRealNVML(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	g, err := nvgpu.New(ctx, nvgpu.Options{})
	if errors.Is(err, nvgpu.ErrLibraryNotFound) {
		t.Skipf("real NVML process use skipped: %v (run a CUDA process on the GPU to see it listed)", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, g.Close()) })
	r, ok := g.(nvgpu.ProcessUseReader)
	require.True(t, ok, "the real machine reads process use")
	use, err := r.ProcessUse(ctx, time.Now().Add(-10*time.Second))
	require.NoError(t, err)
	t.Logf("%d processes on the GPUs: %+v", len(use), use)
	checkProcessUse(t, discover(t, g), use)
}

// The same check over every fake machine, with processes running.
func TestProcessUseFakes(t *testing.T) {
	for _, name := range nvgpu.FakeMachines() {
		t.Run(name, func(t *testing.T) {
			f := openFake(t, name)
			ctx := context.Background()
			m := discover(t, f)
			want := map[uint32]nvgpu.ProcessUse{}
			for i, gpu := range m.GPUs {
				p := nvgpu.FakeProcess{PID: uint32(1000 + i), GPUUUID: gpu.UUID, SMPercent: uint32(10 * i), MemoryBytes: uint64(i+1) << 30}
				u := nvgpu.ProcessUse{PID: p.PID, GPUUUID: gpu.UUID, GPUIndex: i, GPUInstanceID: -1, ComputeInstanceID: -1,
					UsedMemoryBytes: p.MemoryBytes, UsedMemoryKnown: true, SMUtilPercent: float64(p.SMPercent), SMUtilKnown: true}
				if in, ok := liveMIGInstance(gpu); ok {
					p.GPUInstance, p.ComputeInstance = ptr.To(in.GPUInstanceID), ptr.To(in.ComputeInstances[0].ID)
					u.MIGUUID, u.GPUInstanceID, u.ComputeInstanceID = in.UUID, in.GPUInstanceID, in.ComputeInstances[0].ID
					u.SMUtilPercent, u.SMUtilKnown = 0, false
				} else if gpu.MIGEnabled {
					continue // MIG mode without a compute instance runs nothing
				}
				require.NoError(t, f.RunProcess(p))
				want[p.PID] = u
			}
			require.NotEmpty(t, want)
			use, err := f.ProcessUse(ctx, time.Time{})
			require.NoError(t, err)
			checkProcessUse(t, m, use)
			got := map[uint32]nvgpu.ProcessUse{}
			for _, u := range use {
				got[u.PID] = u
			}
			assert.Equal(t, want, got)
		})
	}
}

func liveMIGInstance(gpu inventory.GPU) (inventory.MIGInstance, bool) {
	if !gpu.MIGEnabled || gpu.MIG == nil {
		return inventory.MIGInstance{}, false
	}
	for _, in := range gpu.MIG.Instances {
		if len(in.ComputeInstances) > 0 {
			return in, true
		}
	}
	return inventory.MIGInstance{}, false
}

// Two processes time-slicing one GPU each report their own SM share and
// memory; samples no newer than since are not counted.
func TestFakeTimeSlicedProcesses(t *testing.T) {
	f := openFake(t, "dgxh200")
	ctx := context.Background()
	gpu := discover(t, f).GPUs[2].UUID
	require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: 41, GPUUUID: gpu, SMPercent: 30, MemoryBytes: 11 << 30}))
	require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: 42, GPUUUID: gpu, SMPercent: 50, MemoryBytes: 20 << 30}))
	require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: 42, GPUUUID: gpu, SMPercent: 55, MemoryBytes: 21 << 30}), "an update")

	use, err := f.ProcessUse(ctx, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.Len(t, use, 2)
	byPID := map[uint32]nvgpu.ProcessUse{use[0].PID: use[0], use[1].PID: use[1]}
	assert.InDelta(t, 30, byPID[41].SMUtilPercent, 0.001)
	assert.InDelta(t, 55, byPID[42].SMUtilPercent, 0.001)
	assert.Equal(t, uint64(21<<30), byPID[42].UsedMemoryBytes)

	use, err = f.ProcessUse(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, use, 2, "the processes still run")
	for _, u := range use {
		assert.True(t, u.SMUtilKnown)
		assert.Zero(t, u.SMUtilPercent, "no sample after since")
	}

	f.StopProcess(41)
	use, err = f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, use, 1)
	assert.Equal(t, uint32(42), use[0].PID)
}

func TestFakeRunProcessRefusesWhatNVMLCannotRun(t *testing.T) {
	f := openFake(t, "mixed")
	m := discover(t, f)
	migGPU, plainGPU := m.GPUs[0], m.GPUs[5]
	in, ok := liveMIGInstance(migGPU)
	require.True(t, ok)
	tests := map[string]struct {
		proc    nvgpu.FakeProcess
		wantErr error
		wantMsg string
	}{
		"unknown GPU": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: "GPU-nope"}, wantErr: nvgpu.ErrNotFound},
		"MIG GPU without instance": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: migGPU.UUID},
			wantErr: nvgpu.ErrInvalidPlacement},
		"instance on a GPU without MIG": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: plainGPU.UUID,
			GPUInstance: ptr.To(1), ComputeInstance: ptr.To(0)}, wantErr: nvgpu.ErrMIGDisabled},
		"no such MIG instance": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: migGPU.UUID,
			GPUInstance: ptr.To(in.GPUInstanceID + 40), ComputeInstance: ptr.To(0)}, wantErr: nvgpu.ErrNotFound},
		"half a MIG address": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: migGPU.UUID, GPUInstance: ptr.To(1)},
			wantMsg: "both gpuInstance and computeInstance"},
		"zero pid":   {proc: nvgpu.FakeProcess{GPUUUID: plainGPU.UUID}, wantMsg: "pid must be positive"},
		"over 100 %": {proc: nvgpu.FakeProcess{PID: 1, GPUUUID: plainGPU.UUID, SMPercent: 101}, wantMsg: "over 100"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := f.RunProcess(tc.proc)
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			assert.ErrorContains(t, err, tc.wantMsg)
		})
	}
}

// A process in a MIG instance is listed through the instance's MIG device
// handle, and ends with the instance.
func TestFakeMIGProcessEndsWithItsInstance(t *testing.T) {
	f := openFake(t, "mixed")
	ctx := context.Background()
	gpu := discover(t, f).GPUs[0]
	require.Len(t, gpu.MIG.Instances, 2)
	for i, in := range gpu.MIG.Instances {
		require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: uint32(7 + i), GPUUUID: gpu.UUID, MemoryBytes: 5 << 30,
			GPUInstance: ptr.To(in.GPUInstanceID), ComputeInstance: ptr.To(in.ComputeInstances[0].ID)}))
	}
	use, err := f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, use, 2)
	last := gpu.MIG.Instances[1]
	require.NoError(t, f.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{GPUUUID: gpu.UUID,
		GPUInstanceID: last.GPUInstanceID, ComputeInstanceID: last.ComputeInstances[0].ID}))
	use, err = f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, use, 1)
	assert.Equal(t, gpu.MIG.Instances[0].UUID, use[0].MIGUUID)
	assert.Equal(t, gpu.MIG.Instances[0].GPUInstanceID, use[0].GPUInstanceID)
}

// The node simulator sets processes through the FakeProcessesEnv file; the
// fake reads it on every query.
func TestFakeProcessesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "processes.json")
	t.Setenv(nvgpu.FakeProcessesEnv, path)
	f := openFake(t, "l4x4")
	ctx := context.Background()
	m := discover(t, f)

	use, err := f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, use, "no file: no processes")

	require.NoError(t, nvgpu.WriteFakeProcesses(path, []nvgpu.FakeProcess{
		{PID: 10, GPUUUID: m.GPUs[0].UUID, SMPercent: 30, MemoryBytes: 1 << 30},
		{PID: 11, GPUUUID: m.GPUs[0].UUID, SMPercent: 50, MemoryBytes: 2 << 30},
		{PID: 12, GPUUUID: "GPU-of-another-node", SMPercent: 50},
	}))
	require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: 13, GPUUUID: m.GPUs[1].UUID, SMPercent: 5}))
	use, err = f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []uint32{10, 11, 13}, pids(use), "a GPU this machine lacks runs nothing")

	require.NoError(t, nvgpu.WriteFakeProcesses(path, []nvgpu.FakeProcess{{PID: 11, GPUUUID: m.GPUs[3].UUID, SMPercent: 70}}))
	use, err = f.ProcessUse(ctx, time.Time{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []uint32{11, 13}, pids(use))

	require.NoError(t, os.WriteFile(path, []byte(`{"processes":[{"pid":1,"gpuUUID":"x","sm":3}]}`), 0o600))
	_, err = f.ProcessUse(ctx, time.Time{})
	assert.ErrorContains(t, err, `unknown field "sm"`)

	assert.ErrorContains(t, nvgpu.WriteFakeProcesses(path, []nvgpu.FakeProcess{{GPUUUID: "x"}}), "pid must be positive")
}

func pids(use []nvgpu.ProcessUse) []uint32 {
	out := make([]uint32, 0, len(use))
	for _, u := range use {
		out = append(out, u.PID)
	}
	return out
}

// A lost GPU is left out; the others still report.
func TestProcessUseLeavesLostGPUOut(t *testing.T) {
	f := openFake(t, "l4x4")
	m := discover(t, f)
	for i, gpu := range m.GPUs {
		require.NoError(t, f.RunProcess(nvgpu.FakeProcess{PID: uint32(100 + i), GPUUUID: gpu.UUID}))
	}
	require.NoError(t, f.LoseGPU(2))
	use, err := f.ProcessUse(context.Background(), time.Time{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []uint32{100, 101, 103}, pids(use))
}
