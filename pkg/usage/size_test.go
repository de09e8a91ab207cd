package usage_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

func h200GPU() inventory.GPU {
	return inventory.GPU{UUID: "GPU-0", ProductName: "NVIDIA H200", MemoryBytes: 141 * gib, MIGCapable: true,
		MIG: &inventory.MIGInfo{MemorySlices: 8, ComputeSlices: 7, Profiles: []inventory.MIGProfile{
			{ID: 0, Name: "1g.18gb", ComputeSlices: 1, MemorySlices: 1, MemoryBytes: 16 * gib, Multiprocessors: 16},
			{ID: 7, Name: "1g.18gb+me", ComputeSlices: 1, MemorySlices: 1, MemoryBytes: 16 * gib, Multiprocessors: 16, Decoders: 1},
			{ID: 2, Name: "3g.71gb", ComputeSlices: 3, MemorySlices: 4, MemoryBytes: 70 * gib, Multiprocessors: 60},
			{ID: 4, Name: "7g.141gb", ComputeSlices: 7, MemorySlices: 8, MemoryBytes: 140 * gib, Multiprocessors: 132},
		}}}
}

func TestMIGSizesArePricedLikeTheSlices(t *testing.T) {
	sizes := usage.MIGSizes(h200GPU(), "inference", 3_520_000)
	require.Len(t, sizes, 3, "no media-extension profile")
	assert.Equal(t, usage.Size{Name: "inference 1g.18gb", Product: "NVIDIA H200", MemoryBytes: 16 * gib, Multiprocessors: 16, CostPerHour: 0.44}, sizes[0])
	assert.InDelta(t, 1.76, sizes[1].CostPerHour, 1e-9)
	assert.InDelta(t, 3.52, sizes[2].CostPerHour, 1e-9, "the full profile costs the GPU")
	assert.Empty(t, usage.MIGSizes(inventory.GPU{ProductName: "NVIDIA L4"}, "dev", 800_000))
}

func TestGPUDevice(t *testing.T) {
	gpu := h200GPU()
	whole := usage.GPUDevice(gpu, usage.WholeGPU("GPU-0"), "")
	assert.Equal(t, usage.Device{GPU: usage.WholeGPU("GPU-0"), Product: "NVIDIA H200", MemoryBytes: 141 * gib, Multiprocessors: 132}, whole)
	mig := usage.GPUDevice(gpu, usage.MIGRef("GPU-0", 2, 0), "3g.71gb")
	assert.Equal(t, usage.Device{GPU: usage.MIGRef("GPU-0", 2, 0), Product: "NVIDIA H200", Profile: "3g.71gb",
		MemoryBytes: 70 * gib, Multiprocessors: 60}, mig)
	assert.Zero(t, usage.GPUDevice(inventory.GPU{ProductName: "NVIDIA L4"}, usage.WholeGPU("x"), "").Multiprocessors)
}
