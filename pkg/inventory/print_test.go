package inventory

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatPlacements(t *testing.T) {
	tests := map[string]struct {
		in   []MIGPlacement
		want string
	}{
		"none":        {want: "{}"},
		"one size":    {in: []MIGPlacement{{0, 2}, {2, 2}, {4, 2}}, want: "{0,2,4}:2"},
		"single":      {in: []MIGPlacement{{0, 8}}, want: "{0}:8"},
		"mixed sizes": {in: []MIGPlacement{{0, 1}, {2, 2}}, want: "{0:1,2:2}"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, FormatPlacements(tc.in)) })
	}
}

func TestWriteTable(t *testing.T) {
	m := Machine{DriverVersion: "550.54.15", CUDADriverVersion: "12.4", GPUs: []GPU{
		{Index: 0, UUID: "GPU-a", ProductName: "NVIDIA H200", MemoryBytes: 141 << 30, PCIBusID: "0000:18:00.0",
			PCIeRoot: "pci0000:15", NUMANode: 0, ComputeMode: ComputeModeDefault, MIGCapable: true, MIGEnabled: true,
			MIG: &MIGInfo{MemorySlices: 8, ComputeSlices: 7,
				Profiles:  []MIGProfile{{ID: 2, Name: "3g.71gb", ComputeSlices: 3, Placements: []MIGPlacement{{0, 4}, {4, 4}}}},
				Instances: []MIGInstance{{GPUInstanceID: 1, ProfileName: "3g.71gb", Placement: MIGPlacement{4, 4}, UUID: "MIG-x", ComputeInstances: []ComputeInstance{{ID: 0}}}}}},
		{Index: 1, UUID: "GPU-b", ProductName: "NVIDIA L4", MemoryBytes: 22 << 30, NUMANode: -1, ComputeMode: ComputeModeExclusiveProcess},
	}}
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, m))
	out := buf.String()
	for _, want := range []string{"Driver 550.54.15, CUDA 12.4, 2 GPUs", "141.0 GiB", "pci0000:15", "enabled",
		"ExclusiveProcess", "MIG profiles of NVIDIA H200 (7 compute slices, 8 memory slices)", "{0,4}:4",
		"MIG instances", "MIG-x", "4:4"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "MIG profiles of NVIDIA L4")
}
