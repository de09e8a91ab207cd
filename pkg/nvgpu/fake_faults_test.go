//go:build cgo

package nvgpu_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func nextEvent(t *testing.T, events <-chan nvgpu.Event) nvgpu.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event delivered")
		return nvgpu.Event{}
	}
}

// Each kind of fault the health state machine handles reaches the watch
// as NVML would report it.
func TestFakeInjectsEveryFault(t *testing.T) {
	f := openFake(t, "dgxh200")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := discover(t, f)
	events, err := f.Events(ctx)
	require.NoError(t, err)

	require.NoError(t, f.InjectDoubleBitECC(1))
	assert.Equal(t, nvgpu.Event{GPUUUID: m.GPUs[1].UUID, GPUIndex: 1, Type: nvgpu.EventDoubleBitECC,
		GPUInstanceID: -1, ComputeInstanceID: -1}, nextEvent(t, events))

	require.NoError(t, f.InjectMIGXID(2, 5, 0, 94))
	assert.Equal(t, nvgpu.Event{GPUUUID: m.GPUs[2].UUID, GPUIndex: 2, Type: nvgpu.EventXID, XID: 94,
		GPUInstanceID: 5, ComputeInstanceID: 0}, nextEvent(t, events))

	require.NoError(t, f.LoseGPU(3))
	assert.Equal(t, nvgpu.EventGPULost, nextEvent(t, events).Type)
	assert.ErrorIs(t, f.Answers(ctx, m.GPUs[3].UUID), nvgpu.ErrGPULost)
	assert.Len(t, discover(t, f).GPUs, 7)

	require.NoError(t, f.RestoreGPU(3))
	assert.NoError(t, f.Answers(ctx, m.GPUs[3].UUID))
	assert.Equal(t, m, discover(t, f), "a restored GPU is discovered as before")
	assert.ErrorIs(t, f.RestoreGPU(8), nvgpu.ErrNotFound)
}

// Faults dropped into the FakeFaultsEnv directory are applied in order and
// removed; one that arrives before any watch waits for it.
func TestFakeFaultsDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nvgpu.FakeFaultsEnv, dir)
	f := openFake(t, "dgxh200")
	m := discover(t, f)
	require.NoError(t, nvgpu.WriteFakeFault(dir, nvgpu.FakeFault{GPU: 2, Kind: nvgpu.FaultXID, XID: 79}))
	require.NoError(t, nvgpu.WriteFakeFault(dir, nvgpu.FakeFault{GPU: 4, Kind: nvgpu.FaultXID, XID: 31,
		GPUInstance: ptr.To(1), ComputeInstance: ptr.To(0)}))
	time.Sleep(100 * time.Millisecond) // several polls with no watch: the faults wait
	pending, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, pending, 2, "faults wait for a watch")

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := f.Events(ctx)
	require.NoError(t, err)
	assert.Equal(t, nvgpu.Event{GPUUUID: m.GPUs[2].UUID, GPUIndex: 2, Type: nvgpu.EventXID, XID: 79,
		GPUInstanceID: -1, ComputeInstanceID: -1}, nextEvent(t, events))
	assert.Equal(t, nvgpu.Event{GPUUUID: m.GPUs[4].UUID, GPUIndex: 4, Type: nvgpu.EventXID, XID: 31,
		GPUInstanceID: 1, ComputeInstanceID: 0}, nextEvent(t, events))

	require.NoError(t, nvgpu.WriteFakeFault(dir, nvgpu.FakeFault{GPU: 0, Kind: nvgpu.FaultLost}))
	assert.Equal(t, nvgpu.EventGPULost, nextEvent(t, events).Type)
	require.NoError(t, nvgpu.WriteFakeFault(dir, nvgpu.FakeFault{GPU: 0, Kind: nvgpu.FaultHeal}))
	require.Eventually(t, func() bool { return f.Answers(ctx, m.GPUs[0].UUID) == nil }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, nvgpu.WriteFakeFault(dir, nvgpu.FakeFault{GPU: 0, Kind: "melt"}))
	require.Eventually(t, func() bool {
		left, err := os.ReadDir(dir)
		return err == nil && len(left) == 0
	}, 5*time.Second, 10*time.Millisecond, "a malformed fault is logged and removed")
}
