// Package tierratest holds shared test builders: fake GPU inventories as
// plain inventory values (no NVML, CGO_ENABLED=0) and fluent Kubernetes
// object builders in the style MakeClaim("c", "ns").Request("gpu").Obj().
//
// The GPUs are not written here: each model's facts (product, memory, MIG
// profiles and placements) are what pkg/nvgpu discovers on its fake machine
// of that model, the plugin's own code path, kept in fakegpus.json. With cgo,
// TestFakeGPUsMatchNvgpu fails when the two differ and -update rewrites the
// file, so the builders and the fake machines cannot drift apart.
package tierratest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Product names as NVML reports them (TestFakeGPUsMatchNvgpu holds them to
// the fake machines').
const (
	ProductH200 = "NVIDIA H200 141GB HBM3e"
	ProductA100 = "NVIDIA A100-SXM4-40GB"
	ProductB200 = "NVIDIA B200 180GB HBM3e"
	ProductL4   = "NVIDIA L4"
)

// fakeModel is one GPU model: the nvgpu fake machine it is discovered on
// and the model facts of that machine's GPUs (see modelFacts).
type fakeModel struct {
	Machine string        `json:"machine"`
	GPU     inventory.GPU `json:"gpu"`
}

// fakeGPUsJSON maps model name (H200, B200, A100, L4) to its fakeModel.
//
//go:embed fakegpus.json
var fakeGPUsJSON []byte

var fakeModels = sync.OnceValue(func() map[string]fakeModel {
	var out map[string]fakeModel
	if err := json.Unmarshal(fakeGPUsJSON, &out); err != nil {
		panic(fmt.Sprintf("tierratest: fakegpus.json: %v", err)) // embedded data, checked by its test
	}
	return out
})

// nvlinkLocal is the NVLink domain of every NVLink GPU a builder makes:
// one node-local domain, whatever the fake machine calls its own.
const nvlinkLocal = "nvl-local"

// modelFacts keeps what a GPU model decides (product, architecture,
// compute capability, memory, MIG capability and geometry) and clears what
// the machine decides (identity, topology, driver, mode, live instances);
// only whether the GPU has NVLink at all is kept, as nvlinkLocal.
func modelFacts(g inventory.GPU) inventory.GPU {
	out := inventory.GPU{
		ProductName: g.ProductName, Architecture: g.Architecture,
		CUDAComputeCapability: g.CUDAComputeCapability, MemoryBytes: g.MemoryBytes,
		MIGCapable: g.MIGCapable, MIG: cloneMIG(g.MIG),
	}
	if g.NVLinkDomain != "" {
		out.NVLinkDomain = nvlinkLocal
	}
	if out.MIG != nil {
		out.MIG.Instances = nil
	}
	return out
}

func cloneMIG(m *inventory.MIGInfo) *inventory.MIGInfo {
	if m == nil {
		return nil
	}
	out := *m
	out.Profiles = slices.Clone(m.Profiles)
	for i := range out.Profiles {
		out.Profiles[i].Placements = slices.Clone(m.Profiles[i].Placements)
	}
	out.Instances = slices.Clone(m.Instances)
	for i := range out.Instances {
		out.Instances[i].ComputeInstances = slices.Clone(m.Instances[i].ComputeInstances)
	}
	return &out
}

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

// fakeGPU is the named model at the given index: the model's facts from
// the fake machine, with an identity and topology derived from the index
// (two GPUs per PCIe root, four per NUMA node), then opts.
func fakeGPU(model string, index int, opts []GPUOption) inventory.GPU {
	m, ok := fakeModels()[model]
	if !ok {
		panic(fmt.Sprintf("tierratest: no GPU model %q in fakegpus.json", model)) // callers are this file's
	}
	g := modelFacts(m.GPU)
	g.UUID = fmt.Sprintf("GPU-%08x-0000-4000-8000-%012x", index, index)
	g.Index, g.Minor = index, index
	g.DriverVersion = "580.95.05"
	g.PCIBusID = fmt.Sprintf("0000:%02x:00.0", 0x18+index*0x10)
	g.PCIeRoot = fmt.Sprintf("pci0000:%02x", 0x10+index/2*0x20)
	g.NUMANode = index / 4
	g.ComputeMode = inventory.ComputeModeDefault
	for _, o := range opts {
		o(&g)
	}
	return g
}

// H200 is an H200 141GB (fake:dgxh200's GPU) with MIG capability, not
// enabled unless WithMIG(true).
func H200(index int, opts ...GPUOption) inventory.GPU { return fakeGPU("H200", index, opts) }

// B200 is a B200 180GB (fake:dgxb200's GPU) with MIG capability.
func B200(index int, opts ...GPUOption) inventory.GPU { return fakeGPU("B200", index, opts) }

// A100 is an A100-SXM4-40GB (fake:dgxa100's GPU) with MIG capability.
func A100(index int, opts ...GPUOption) inventory.GPU { return fakeGPU("A100", index, opts) }

// L4 is an L4 (fake:l4x4's GPU): not MIG capable, no NVLink.
func L4(index int, opts ...GPUOption) inventory.GPU { return fakeGPU("L4", index, opts) }

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
