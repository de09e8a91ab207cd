package sim

import (
	"fmt"
	"slices"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// GPUModel maps a trace GPU model to the hardware pkg/slices publishes.
type GPUModel struct {
	ProductName           string
	Architecture          string
	CUDAComputeCapability string
	MemoryBytes           uint64
}

const gib = uint64(1) << 30

// models is the one table from trace model names to GPU specs. The trace
// hides the product of G2 and G3 (FGD calls them "G2"/"G3"); they get a
// placeholder name and 16 GiB, which changes nothing here because pods
// request a compute share, not GPU memory.
var models = map[string]GPUModel{
	"P100":    {"Tesla P100-PCIE-16GB", "Pascal", "6.0", 16 * gib},
	"T4":      {"Tesla T4", "Turing", "7.5", 16 * gib},
	"V100M16": {"Tesla V100-SXM2-16GB", "Volta", "7.0", 16 * gib},
	"V100M32": {"Tesla V100-SXM2-32GB", "Volta", "7.0", 32 * gib},
	"A10":     {"NVIDIA A10", "Ampere", "8.6", 24 * gib},
	"G2":      {"Alibaba trace GPU G2", "Unknown", "0.0", 16 * gib},
	"G3":      {"Alibaba trace GPU G3", "Unknown", "0.0", 16 * gib},
}

// LookupModel returns the GPU spec of a trace model name.
func LookupModel(name string) (GPUModel, bool) {
	m, ok := models[name]
	return m, ok
}

// ModelNames lists the trace model names the table knows, sorted.
func ModelNames() []string {
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Machine turns a trace node into the inventory pkg/slices publishes: n
// identical non-MIG GPUs of the node's model.
func (n Node) Machine() inventory.Machine {
	m := models[n.Model]
	machine := inventory.Machine{DriverVersion: "550.54.15", CUDADriverVersion: "12.4"}
	for i := 0; i < n.GPUs; i++ {
		machine.GPUs = append(machine.GPUs, inventory.GPU{
			UUID:                  fmt.Sprintf("GPU-%s-%d", n.Name, i),
			Index:                 i,
			Minor:                 i,
			ProductName:           m.ProductName,
			Architecture:          m.Architecture,
			CUDAComputeCapability: m.CUDAComputeCapability,
			DriverVersion:         machine.DriverVersion,
			MemoryBytes:           m.MemoryBytes,
			PCIBusID:              fmt.Sprintf("0000:%02x:00.0", 0x10+i),
			PCIeRoot:              fmt.Sprintf("pci0000:%02x", i/4),
			NUMANode:              i / 4,
			ComputeMode:           inventory.ComputeModeDefault,
		})
	}
	return machine
}
