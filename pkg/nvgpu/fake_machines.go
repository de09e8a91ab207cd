//go:build cgo

package nvgpu

import (
	"fmt"
	"maps"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// fakeSpec describes a fake machine: which mock server to start and the
// facts the mocks leave out (topology, real MIG placements, prior state).
// Everything here is data for fakes only; the driver reads it back through
// NVML like any other machine.
type fakeSpec struct {
	newServer func() *server.Server
	busIDs    []string
	// roots maps GPU index to its PCIe root complex.
	roots []string
	numa  []int
	// nvlink: how GPUs connect; nil means no NVLink.
	nvlink nvlinkSpec
	// setup prepares prior state (MIG mode, instances) through NVML.
	setup func(f *Fake) error
}

// nvlinkSpec: either every GPU has links to switches NVSwitches, or GPUs
// link directly to the peers of their group.
type nvlinkSpec struct {
	links    int
	switches int
	groups   [][]int
	// fabric makes the GPUs report an NVLink fabric clique.
	fabric bool
}

var hgxHopperBus = []string{"0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
	"0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"}

var twoSocketsNUMA = []int{0, 0, 0, 0, 1, 1, 1, 1}

func pairs(roots ...string) []string {
	out := make([]string, 0, 2*len(roots))
	for _, r := range roots {
		out = append(out, r, r)
	}
	return out
}

var fakeSpecs = map[string]fakeSpec{
	"dgxa100": {
		newServer: func() *server.Server {
			// The mock's placements are right for A100; its name is not.
			a100 := gpus.A100_SXM4_40GB
			a100.Name = "NVIDIA A100-SXM4-40GB"
			return dgxa100.NewWithGPUs(gpus.Multiple(8, a100)...)
		},
		busIDs: []string{"0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
			"0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"},
		roots:  pairs("pci0000:00", "pci0000:40", "pci0000:80", "pci0000:b0"),
		numa:   twoSocketsNUMA,
		nvlink: nvlinkSpec{links: 12, switches: 6},
	},
	"dgxh100": {
		newServer: func() *server.Server {
			return dgxh100.NewWithGPUs(gpus.Multiple(8, withHopperEngines(withRealPlacements(gpus.H100_SXM5_80GB)))...)
		},
		busIDs: hgxHopperBus,
		roots:  pairs("pci0000:15", "pci0000:37", "pci0000:97", "pci0000:b7"),
		numa:   twoSocketsNUMA,
		nvlink: nvlinkSpec{links: 18, switches: 4},
	},
	"dgxh200": {
		newServer: func() *server.Server {
			return dgxh200.NewWithGPUs(gpus.Multiple(8, withHopperEngines(withRealPlacements(gpus.H200_SXM5_141GB)))...)
		},
		busIDs: hgxHopperBus,
		roots:  pairs("pci0000:15", "pci0000:37", "pci0000:97", "pci0000:b7"),
		numa:   twoSocketsNUMA,
		nvlink: nvlinkSpec{links: 18, switches: 4},
	},
	"dgxb200": {
		newServer: func() *server.Server {
			return dgxb200.NewWithGPUs(gpus.Multiple(8, withRealPlacements(gpus.B200_SXM5_180GB))...)
		},
		busIDs: []string{"0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0",
			"0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"},
		roots:  pairs("pci0000:16", "pci0000:4f", "pci0000:98", "pci0000:cc"),
		numa:   twoSocketsNUMA,
		nvlink: nvlinkSpec{links: 18, switches: 2, fabric: true},
	},
	"l4x4": {
		newServer: func() *server.Server {
			return newServer(gpus.Multiple(4, l4)...)
		},
		busIDs: []string{"0000:01:00.0", "0000:41:00.0", "0000:81:00.0", "0000:c1:00.0"},
		roots:  []string{"pci0000:00", "pci0000:40", "pci0000:80", "pci0000:c0"},
		numa:   []int{0, 0, 1, 1},
	},
	// mixed is an H200 NVL box: two 4-way NVLink bridge groups (two NVLink
	// domains), GPUs 0-2 in MIG mode (0 and 1 with live instances, one GPU
	// instance on GPU 1 without a compute instance), the rest not.
	"mixed": {
		newServer: func() *server.Server {
			return newServer(gpus.Multiple(8, h200NVL)...)
		},
		busIDs: hgxHopperBus,
		roots:  pairs("pci0000:15", "pci0000:37", "pci0000:97", "pci0000:b7"),
		numa:   twoSocketsNUMA,
		nvlink: nvlinkSpec{links: 18, groups: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}},
		setup:  setupMixed,
	},
}

func newServer(configs ...gpus.Config) *server.Server {
	s, err := server.New(server.WithGPUs(configs...), server.WithDriverVersion("550.54.15"),
		server.WithNVMLVersion("12.550.54.15"), server.WithCUDADriverVersion(12040))
	if err != nil {
		panic(fmt.Sprintf("mock server: %v", err)) // only fails on bad options, which are constants here
	}
	return s
}

// l4 is a non-MIG Ada Lovelace GPU; the mocks have no such config.
var l4 = gpus.Config{
	Name:         "NVIDIA L4",
	Architecture: nvml.DEVICE_ARCH_ADA,
	Brand:        nvml.BRAND_NVIDIA,
	MemoryMB:     23034,
	CudaMajor:    8,
	CudaMinor:    9,
	PciDeviceId:  0x27B810DE,
}

var h200NVL = func() gpus.Config {
	c := withHopperEngines(withRealPlacements(gpus.H200_SXM5_141GB))
	c.Name = "NVIDIA H200 NVL"
	c.MemoryMB = 143771
	c.PciDeviceId = 0x233B10DE
	return c
}()

// withRealPlacements returns a copy of a Hopper/Blackwell mock config with
// the placements those GPUs really report (7 compute slices over 8 memory
// slices). The mocks give 3g and 7g sizes of 3 and 7 and 1g REV2 single
// slices, which no real GPU reports. The mock's maps are shared globals, so
// they are copied, never changed.
func withRealPlacements(c gpus.Config) gpus.Config {
	seq := func(size uint32, starts ...uint32) []nvml.GpuInstancePlacement {
		out := make([]nvml.GpuInstancePlacement, len(starts))
		for i, s := range starts {
			out[i] = nvml.GpuInstancePlacement{Start: s, Size: size}
		}
		return out
	}
	placements := maps.Clone(c.MIGProfiles.GpuInstancePlacements)
	placements[nvml.GPU_INSTANCE_PROFILE_1_SLICE] = seq(1, 0, 1, 2, 3, 4, 5, 6)
	placements[nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV1] = seq(1, 0, 1, 2, 3, 4, 5, 6)
	placements[nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV2] = seq(2, 0, 2, 4, 6)
	placements[nvml.GPU_INSTANCE_PROFILE_2_SLICE] = seq(2, 0, 2, 4)
	placements[nvml.GPU_INSTANCE_PROFILE_3_SLICE] = seq(4, 0, 4)
	placements[nvml.GPU_INSTANCE_PROFILE_4_SLICE] = seq(4, 0)
	placements[nvml.GPU_INSTANCE_PROFILE_7_SLICE] = seq(8, 0)
	c.MIGProfiles.GpuInstancePlacements = placements
	return c
}

// hopperEngines are the SMs and engines of each GPU instance profile of
// H100/H200 as NVIDIA's MIG user guide lists them (nvidia-smi mig -lgip):
// decoders and JPEG decoders follow the compute slices, the one optical
// flow accelerator goes with +me and 7g, and 7g has all 132 SMs and 8 copy
// engines. The go-nvml mocks give Hopper A100's counts instead (5 decoders,
// no JPEG on 7g; 48 and 112 SMs on 3g and 7g), which no Hopper GPU reports.
var hopperEngines = map[int]struct{ sms, ce, dec, jpg, ofa uint32 }{
	nvml.GPU_INSTANCE_PROFILE_1_SLICE:      {16, 1, 1, 1, 0},
	nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV1: {16, 1, 1, 1, 1},
	nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV2: {16, 1, 1, 1, 0},
	nvml.GPU_INSTANCE_PROFILE_2_SLICE:      {32, 2, 2, 2, 0},
	nvml.GPU_INSTANCE_PROFILE_3_SLICE:      {60, 3, 3, 3, 0},
	nvml.GPU_INSTANCE_PROFILE_4_SLICE:      {64, 4, 4, 4, 0},
	nvml.GPU_INSTANCE_PROFILE_7_SLICE:      {132, 8, 7, 7, 1},
}

// withHopperEngines returns a copy of a Hopper mock config whose GPU
// instance profiles carry hopperEngines; memory sizes and instance counts
// stay the mock's. Like withRealPlacements it copies the shared map.
func withHopperEngines(c gpus.Config) gpus.Config {
	profiles := maps.Clone(c.MIGProfiles.GpuInstanceProfiles)
	for id, e := range hopperEngines {
		p, ok := profiles[id]
		if !ok {
			continue
		}
		p.MultiprocessorCount, p.CopyEngineCount = e.sms, e.ce
		p.DecoderCount, p.JpegCount, p.OfaCount = e.dec, e.jpg, e.ofa
		profiles[id] = p
	}
	c.MIGProfiles.GpuInstanceProfiles = profiles
	return c
}

// setupMixed puts the mixed machine into its prior state through NVML.
func setupMixed(f *Fake) error {
	for i := range 3 {
		if _, ret := f.server.Devices[i].SetMigMode(nvml.DEVICE_MIG_ENABLE); ret != nvml.SUCCESS {
			return nvmlError(fmt.Sprintf("enable MIG on fake GPU %d", i), ret)
		}
	}
	steps := []struct {
		gpu, profile int
		start, size  uint32
		withCI       bool
	}{
		{0, nvml.GPU_INSTANCE_PROFILE_3_SLICE, 0, 4, true},
		{0, nvml.GPU_INSTANCE_PROFILE_2_SLICE, 4, 2, true},
		{1, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 0, 1, true},
		{1, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 1, 1, false},
	}
	for _, s := range steps {
		d := f.server.Devices[s.gpu]
		info, ret := d.GetGpuInstanceProfileInfo(s.profile)
		if ret != nvml.SUCCESS {
			return nvmlError("get profile", ret)
		}
		gi, ret := d.CreateGpuInstanceWithPlacement(&info, &nvml.GpuInstancePlacement{Start: s.start, Size: s.size})
		if ret != nvml.SUCCESS {
			return nvmlError("create GPU instance", ret)
		}
		if !s.withCI {
			continue
		}
		ci, ret := gi.GetComputeInstanceProfileInfo(s.profile, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if ret != nvml.SUCCESS {
			return nvmlError("get compute profile", ret)
		}
		if _, ret := gi.CreateComputeInstance(&ci); ret != nvml.SUCCESS {
			return nvmlError("create compute instance", ret)
		}
	}
	if ret := f.server.Devices[3].SetComputeMode(nvml.COMPUTEMODE_EXCLUSIVE_PROCESS); ret != nvml.SUCCESS {
		return nvmlError("set compute mode", ret)
	}
	return nil
}
