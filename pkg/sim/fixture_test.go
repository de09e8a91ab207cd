package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFixtureReplay(t *testing.T) {
	nodes := []Node{
		{Name: "a", MilliCPU: 16000, MemoryMiB: 65536, GPUs: 2, Model: "T4"},
		{Name: "b", MilliCPU: 32000, MemoryMiB: 65536, GPUs: 1, Model: "T4"},
	}
	f, err := NewFixture(nodes, SlicesPublisher)
	require.NoError(t, err)
	assert.Equal(t, 3, f.GPUs())

	pods := []Pod{
		{Name: "w2", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 2, GPUMilli: 1000},
		{Name: "cpu", MilliCPU: 1000, MemoryMiB: 1024},
		{Name: "f", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 500},
		{Name: "w2-again", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 2, GPUMilli: 1000},
	}
	got, err := f.Replay(context.Background(), pods, ScorerDefault, 42)
	require.NoError(t, err)
	assert.Equal(t, "a", got[0], "only a has two GPUs")
	assert.NotEmpty(t, got[1])
	assert.Equal(t, "b", got[2], "the only free GPU")
	assert.Empty(t, got[3], "no node has two free GPUs")

	spec, err := f.ClaimSpec(pods[2])
	require.NoError(t, err)
	require.Len(t, spec.Devices.Requests, 1)
	assert.Equal(t, ClassName, spec.Devices.Requests[0].Exactly.DeviceClassName)
	spec, err = f.ClaimSpec(pods[1])
	require.NoError(t, err)
	assert.Nil(t, spec, "CPU-only pods need no claim")

	sl := f.Slices(0)
	require.NotEmpty(t, sl)
	assert.Equal(t, "a", *sl[0].Spec.NodeName)
	assert.Equal(t, ClassName, DeviceClass().Name)
}

// TestReplayWithTypical checks that the target workload given as typical
// pods (what the scheduler plugin's args carry) replays as the one drawn
// from the same pods.
func TestReplayWithTypical(t *testing.T) {
	tr := loadTestTrace(t)
	fix, err := NewFixture(tr.Nodes, SlicesPublisher)
	require.NoError(t, err)
	ctx := context.Background()
	drawn, err := fix.Replay(ctx, tr.Pods, ScorerFrag, 42)
	require.NoError(t, err)
	given, err := fix.ReplayWith(ctx, tr.Pods, ScorerFrag, 42, TypicalPods(tr.Pods))
	require.NoError(t, err)
	assert.Equal(t, drawn, given)
}
