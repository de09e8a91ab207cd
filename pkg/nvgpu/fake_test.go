//go:build cgo

package nvgpu_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// fakeWant is what each fake machine must look like.
type fakeWant struct {
	gpus          int
	product       string
	arch          string
	cc            string
	memoryMiB     uint64
	numa          []int
	pcieRoots     []string
	nvlinkDomains int
	// placements: profile name → placements, exactly, for every GPU.
	placements map[string]string
	// migEnabled and instances per GPU index (missing: none).
	migEnabled []int
	instances  map[int][]string
}

var hopperRoots = []string{"pci0000:15", "pci0000:15", "pci0000:37", "pci0000:37",
	"pci0000:97", "pci0000:97", "pci0000:b7", "pci0000:b7"}

var numa2x4 = []int{0, 0, 0, 0, 1, 1, 1, 1}

var fakeWants = map[string]fakeWant{
	"dgxa100": {gpus: 8, product: "NVIDIA A100-SXM4-40GB", arch: "Ampere", cc: "8.0", memoryMiB: 40960, numa: numa2x4,
		pcieRoots: []string{"pci0000:00", "pci0000:00", "pci0000:40", "pci0000:40",
			"pci0000:80", "pci0000:80", "pci0000:b0", "pci0000:b0"},
		nvlinkDomains: 1,
		placements: map[string]string{"1g.5gb": "{0,1,2,3,4,5,6}:1", "1g.5gb+me": "{0,1,2,3,4,5,6}:1",
			"1g.10gb": "{0,2,4,6}:2", "2g.10gb": "{0,2,4}:2", "3g.20gb": "{0,4}:4", "4g.20gb": "{0}:4", "7g.40gb": "{0}:8"}},
	"dgxh100": {gpus: 8, product: "NVIDIA H100 80GB HBM3", arch: "Hopper", cc: "9.0", memoryMiB: 81920, numa: numa2x4,
		pcieRoots: hopperRoots, nvlinkDomains: 1,
		placements: map[string]string{"1g.10gb": "{0,1,2,3,4,5,6}:1", "1g.10gb+me": "{0,1,2,3,4,5,6}:1",
			"1g.20gb": "{0,2,4,6}:2", "2g.20gb": "{0,2,4}:2", "3g.40gb": "{0,4}:4", "4g.40gb": "{0}:4", "7g.80gb": "{0}:8"}},
	"dgxh200": {gpus: 8, product: "NVIDIA H200 141GB HBM3e", arch: "Hopper", cc: "9.0", memoryMiB: 144384, numa: numa2x4,
		pcieRoots: hopperRoots, nvlinkDomains: 1, placements: h200Placements},
	"dgxb200": {gpus: 8, product: "NVIDIA B200 180GB HBM3e", arch: "Blackwell", cc: "10.0", memoryMiB: 184320, numa: numa2x4,
		pcieRoots: []string{"pci0000:16", "pci0000:16", "pci0000:4f", "pci0000:4f",
			"pci0000:98", "pci0000:98", "pci0000:cc", "pci0000:cc"},
		nvlinkDomains: 1,
		placements: map[string]string{"1g.23gb": "{0,1,2,3,4,5,6}:1", "1g.23gb+me": "{0,1,2,3,4,5,6}:1",
			"1g.45gb": "{0,2,4,6}:2", "2g.45gb": "{0,2,4}:2", "3g.90gb": "{0,4}:4", "4g.90gb": "{0}:4", "7g.180gb": "{0}:8"}},
	"l4x4": {gpus: 4, product: "NVIDIA L4", arch: "Ada Lovelace", cc: "8.9", memoryMiB: 23034, numa: []int{0, 0, 1, 1},
		pcieRoots: []string{"pci0000:00", "pci0000:40", "pci0000:80", "pci0000:c0"}},
	"mixed": {gpus: 8, product: "NVIDIA H200 NVL", arch: "Hopper", cc: "9.0", memoryMiB: 143771, numa: numa2x4,
		pcieRoots: hopperRoots, nvlinkDomains: 2, placements: h200Placements,
		migEnabled: []int{0, 1, 2},
		instances:  map[int][]string{0: {"3g.71gb@0:4/1ci", "2g.35gb@4:2/1ci"}, 1: {"1g.18gb@0:1/1ci", "1g.18gb@1:1/0ci"}}},
}

var h200Placements = map[string]string{"1g.18gb": "{0,1,2,3,4,5,6}:1", "1g.18gb+me": "{0,1,2,3,4,5,6}:1",
	"1g.35gb": "{0,2,4,6}:2", "2g.35gb": "{0,2,4}:2", "3g.71gb": "{0,4}:4", "4g.71gb": "{0}:4", "7g.141gb": "{0}:8"}

func TestFakeMachines(t *testing.T) {
	require.ElementsMatch(t, nvgpu.FakeMachines(), slices.Collect(maps.Keys(fakeWants)), "every fake machine has expectations")
	for name, want := range fakeWants {
		t.Run(name, func(t *testing.T) {
			m := discover(t, openFake(t, name))
			require.Len(t, m.GPUs, want.gpus)
			domains := map[string]bool{}
			for i, g := range m.GPUs {
				assert.Equal(t, want.product, g.ProductName)
				assert.Equal(t, want.arch, g.Architecture)
				assert.Equal(t, want.cc, g.CUDAComputeCapability)
				assert.Equal(t, want.memoryMiB<<20, g.MemoryBytes)
				assert.Equal(t, want.numa[i], g.NUMANode, "GPU %d", i)
				assert.Equal(t, want.pcieRoots[i], g.PCIeRoot, "GPU %d", i)
				if g.NVLinkDomain != "" {
					domains[g.NVLinkDomain] = true
				}
				assert.Equal(t, want.placements != nil, g.MIGCapable)
				assert.Equal(t, slices.Contains(want.migEnabled, i), g.MIGEnabled, "GPU %d", i)
				if g.MIG == nil {
					continue
				}
				got := map[string]string{}
				for _, p := range g.MIG.Profiles {
					got[p.Name] = inventory.FormatPlacements(p.Placements)
				}
				assert.Equal(t, want.placements, got, "GPU %d", i)
				assert.Equal(t, 8, g.MIG.MemorySlices)
				assert.Equal(t, 7, g.MIG.ComputeSlices)
				assert.Equal(t, want.instances[i], describe(g.MIG.Instances), "GPU %d", i)
			}
			assert.Len(t, domains, want.nvlinkDomains)
		})
	}
}

func TestFakeIsDeterministic(t *testing.T) {
	for _, name := range nvgpu.FakeMachines() {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, discover(t, openFake(t, name)), discover(t, openFake(t, name)))
		})
	}
}

func TestMixedNVLinkDomainsFollowBridgeGroups(t *testing.T) {
	m := discover(t, openFake(t, "mixed"))
	for i, g := range m.GPUs {
		assert.Equal(t, m.GPUs[i/4*4].NVLinkDomain, g.NVLinkDomain, "GPU %d shares its group's domain", i)
	}
	assert.NotEqual(t, m.GPUs[0].NVLinkDomain, m.GPUs[4].NVLinkDomain)
	assert.Equal(t, inventory.ComputeModeExclusiveProcess, m.GPUs[3].ComputeMode)
}

func TestNewMachineSelection(t *testing.T) {
	tests := map[string]struct {
		machine string
		wantErr error
	}{
		"fake":          {machine: "fake:l4x4"},
		"unknown fake":  {machine: "fake:dgx9000", wantErr: nvgpu.ErrUnknownMachine},
		"no fake: form": {machine: "dgxh200", wantErr: nvgpu.ErrUnknownMachine},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g, err := nvgpu.New(context.Background(), nvgpu.Options{Machine: tc.machine})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.ErrorContains(t, err, "dgxh200, l4x4, mixed", "the error lists the fakes")
				return
			}
			require.NoError(t, err)
			assert.NoError(t, g.Close())
		})
	}
}

func TestInjectWithoutListenerFails(t *testing.T) {
	f := openFake(t, "dgxh200")
	assert.ErrorIs(t, f.InjectXID(0, 79), nvgpu.ErrNotFound)
	assert.ErrorIs(t, f.InjectXID(8, 79), nvgpu.ErrNotFound)
}

func describe(ins []inventory.MIGInstance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s@%s/%dci", in.ProfileName, in.Placement, len(in.ComputeInstances)))
	}
	return out
}

// A GPU that falls off the bus wakes the event watchers as lost, and
// discovery then publishes the GPUs that are left.
func TestLostGPUIsReportedAndLeftOut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := openFake(t, "dgxh200")
	before, err := f.Machine(ctx)
	require.NoError(t, err)
	events, err := f.Events(ctx)
	require.NoError(t, err)
	require.NoError(t, f.LoseGPU(3))
	select {
	case ev := <-events:
		assert.Equal(t, nvgpu.EventGPULost, ev.Type)
		assert.Equal(t, before.GPUs[3].UUID, ev.GPUUUID)
	case <-time.After(10 * time.Second):
		t.Fatal("no GPU-lost event")
	}
	after, err := f.Machine(ctx)
	require.NoError(t, err)
	require.Len(t, after.GPUs, 7)
	for _, g := range after.GPUs {
		assert.NotEqual(t, 3, g.Index, "the lost GPU is still discovered")
	}
}
