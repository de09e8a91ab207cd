// Package tierratest holds shared test builders: fake GPU inventories built as
// plain inventory values (no NVML, CGO_ENABLED=0) and fluent Kubernetes
// object builders in the style MakeClaim("c", "ns").Request("gpu").Obj().
package tierratest

import (
	"fmt"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Product names as NVML reports them.
const (
	ProductH200 = "NVIDIA H200 141GB HBM3e"
	ProductA100 = "NVIDIA A100-SXM4-40GB"
	ProductB200 = "NVIDIA B200"
	ProductL4   = "NVIDIA L4"
)

const (
	mib = uint64(1) << 20
	gib = uint64(1) << 30
)

// GPUOption modifies a fake GPU.
type GPUOption func(*inventory.GPU)

// WithNVLink sets the GPU's NVLink domain.
func WithNVLink(domain string) GPUOption {
	return func(g *inventory.GPU) { g.NVLinkDomain = domain }
}

// WithNUMA sets the GPU's NUMA node.
func WithNUMA(node int) GPUOption { return func(g *inventory.GPU) { g.NUMANode = node } }

// WithPCIeRoot sets the GPU's PCIe root complex.
func WithPCIeRoot(root string) GPUOption { return func(g *inventory.GPU) { g.PCIeRoot = root } }

// WithMIG enables or disables MIG mode on a MIG-capable GPU.
func WithMIG(enabled bool) GPUOption { return func(g *inventory.GPU) { g.MIGEnabled = enabled } }

// WithUUID overrides the GPU's UUID.
func WithUUID(uuid string) GPUOption { return func(g *inventory.GPU) { g.UUID = uuid } }

// profileSpec is a MIG profile of a fake GPU: NVML profile id, name, slices,
// start offsets and engines. Sizes of placements equal the memory slices.
type profileSpec struct {
	id, compute, memory, sms, ce, dec, enc, jpg, ofa int
	name                                             string
	starts                                           []int
}

func migInfo(memPerSlice uint64, specs []profileSpec) *inventory.MIGInfo {
	info := &inventory.MIGInfo{MemorySlices: 8, ComputeSlices: 7}
	for _, s := range specs {
		p := inventory.MIGProfile{
			ID: s.id, Name: s.name, ComputeSlices: s.compute, MemorySlices: s.memory,
			MemoryBytes: uint64(s.memory) * memPerSlice, Multiprocessors: s.sms,
			CopyEngines: s.ce, Decoders: s.dec, Encoders: s.enc, JPEGs: s.jpg, OFAs: s.ofa,
			MaxInstances: len(s.starts),
		}
		for _, start := range s.starts {
			p.Placements = append(p.Placements, inventory.Placement{Start: start, Size: s.memory})
		}
		info.Profiles = append(info.Profiles, p)
	}
	return info
}

// hopperProfiles is the MIG geometry of H100/H200-class GPUs with the
// given profile memory labels (e.g. "18gb", "35gb", "71gb", "141gb").
func hopperProfiles(sms [5]int, one, two, four, seven string) []profileSpec {
	return []profileSpec{
		{id: 19, name: "1g." + one, compute: 1, memory: 1, sms: sms[0], ce: 1, dec: 1, jpg: 1, starts: []int{0, 1, 2, 3, 4, 5, 6}},
		{id: 20, name: "1g." + one + "+me", compute: 1, memory: 1, sms: sms[0], ce: 1, dec: 1, jpg: 1, ofa: 1, starts: []int{0, 1, 2, 3, 4, 5, 6}},
		{id: 15, name: "1g." + two, compute: 1, memory: 2, sms: sms[0], ce: 1, dec: 1, jpg: 1, starts: []int{0, 2, 4, 6}},
		{id: 14, name: "2g." + two, compute: 2, memory: 2, sms: sms[1], ce: 2, dec: 2, jpg: 2, starts: []int{0, 2, 4}},
		{id: 9, name: "3g." + four, compute: 3, memory: 4, sms: sms[2], ce: 3, dec: 3, jpg: 3, starts: []int{0, 4}},
		{id: 5, name: "4g." + four, compute: 4, memory: 4, sms: sms[3], ce: 4, dec: 4, jpg: 4, starts: []int{0}},
		{id: 0, name: "7g." + seven, compute: 7, memory: 8, sms: sms[4], ce: 8, dec: 7, jpg: 7, ofa: 1, starts: []int{0}},
	}
}

func baseGPU(index int, product, arch, cc string, mem uint64, opts []GPUOption) inventory.GPU {
	g := inventory.GPU{
		UUID:  fmt.Sprintf("GPU-%08x-0000-4000-8000-%012x", index, index),
		Index: index, Minor: index,
		ProductName: product, Architecture: arch, CUDAComputeCapability: cc,
		DriverVersion: "580.95.05", MemoryBytes: mem,
		PCIBusID: fmt.Sprintf("0000:%02x:00.0", 0x18+index*0x10),
		PCIeRoot: fmt.Sprintf("pci0000:%02x", 0x10+index/2*0x20),
		NUMANode: index / 4, ComputeMode: inventory.ComputeModeDefault,
	}
	for _, o := range opts {
		o(&g)
	}
	return g
}

// H200 is an H200 141GB with MIG capability (not enabled unless WithMIG(true)).
func H200(index int, opts ...GPUOption) inventory.GPU {
	g := baseGPU(index, ProductH200, "Hopper", "9.0", 143771*mib, nil)
	g.NVLinkDomain = "nvl-local"
	g.MIGCapable = true
	g.MIG = migInfo(g.MemoryBytes/8, hopperProfiles([5]int{16, 32, 60, 64, 132}, "18gb", "35gb", "71gb", "141gb"))
	for _, o := range opts {
		o(&g)
	}
	return g
}

// B200 is a B200 180GB with MIG capability.
func B200(index int, opts ...GPUOption) inventory.GPU {
	g := baseGPU(index, ProductB200, "Blackwell", "10.0", 180*gib, nil)
	g.NVLinkDomain = "nvl-local"
	g.MIGCapable = true
	g.MIG = migInfo(g.MemoryBytes/8, hopperProfiles([5]int{18, 36, 72, 80, 148}, "23gb", "45gb", "90gb", "180gb"))
	for _, o := range opts {
		o(&g)
	}
	return g
}

// A100 is an A100-SXM4-40GB with MIG capability (Ampere geometry: no 1g.10gb
// REV2 on the 40GB part, 1g.5gb+me exists).
func A100(index int, opts ...GPUOption) inventory.GPU {
	g := baseGPU(index, ProductA100, "Ampere", "8.0", 40*gib, nil)
	g.NVLinkDomain = "nvl-local"
	g.MIGCapable = true
	specs := hopperProfiles([5]int{14, 28, 42, 56, 98}, "5gb", "10gb", "20gb", "40gb")
	specs = append(specs[:2], specs[3:]...) // the 40GB A100 has no 1g.10gb
	g.MIG = migInfo(g.MemoryBytes/8, specs)
	for _, o := range opts {
		o(&g)
	}
	return g
}

// L4 is a 24GB L4: not MIG capable, no NVLink.
func L4(index int, opts ...GPUOption) inventory.GPU {
	return baseGPU(index, ProductL4, "Ada Lovelace", "8.9", 24*gib, opts)
}

// Machine builds n GPUs with make(i) and wraps them in a Machine.
func Machine(n int, make func(i int) inventory.GPU) inventory.Machine {
	m := inventory.Machine{DriverVersion: "580.95.05", CUDADriverVersion: "13.0"}
	for i := 0; i < n; i++ {
		m.GPUs = append(m.GPUs, make(i))
	}
	return m
}

// DGXH200 is eight H200s in one NVLink domain, MIG mode as given.
func DGXH200(mig bool) inventory.Machine {
	return Machine(8, func(i int) inventory.GPU { return H200(i, WithMIG(mig)) })
}
