// Package inventory holds the plain data that describes a node's GPUs: what
// pkg/nvgpu discovers and what pkg/slices publishes. It has no behaviour that
// touches hardware and builds with CGO_ENABLED=0.
package inventory

import (
	"fmt"
	"slices"
)

// Machine is everything discovered on one node.
type Machine struct {
	// DriverVersion is the kernel driver version, e.g. "550.54.15".
	DriverVersion string `json:"driverVersion"`
	// CUDADriverVersion is the CUDA version the driver supports, e.g. "12.4".
	CUDADriverVersion string `json:"cudaDriverVersion"`
	GPUs              []GPU  `json:"gpus"`
}

// ComputeMode mirrors NVML's compute modes with readable names.
type ComputeMode string

const (
	ComputeModeDefault          ComputeMode = "Default"
	ComputeModeExclusiveProcess ComputeMode = "ExclusiveProcess"
	ComputeModeProhibited       ComputeMode = "Prohibited"
)

// GPU is one physical GPU.
type GPU struct {
	UUID  string `json:"uuid"`
	Index int    `json:"index"`
	// Minor is the N of /dev/nvidiaN.
	Minor        int    `json:"minor"`
	ProductName  string `json:"productName"`
	Architecture string `json:"architecture"`
	// CUDAComputeCapability is "major.minor", e.g. "9.0".
	CUDAComputeCapability string `json:"cudaComputeCapability"`
	DriverVersion         string `json:"driverVersion"`
	MemoryBytes           uint64 `json:"memoryBytes"`
	// PCIBusID is the full PCI address, e.g. "0000:1b:00.0".
	PCIBusID string `json:"pciBusID"`
	// PCIeRoot names the PCIe root complex the GPU hangs off, in the form
	// the standard resource.kubernetes.io/pcieRoot attribute uses ("pci0000:00").
	PCIeRoot string `json:"pcieRoot"`
	// NUMANode is the host NUMA node closest to the GPU, -1 when unknown.
	NUMANode int `json:"numaNode"`
	// NVLinkDomain identifies the set of GPUs that reach each other over
	// NVLink (the NVLink fabric clique, "<clusterUUID>.<cliqueID>", or a
	// node-local domain). Empty when the GPU has no NVLink peers.
	NVLinkDomain string      `json:"nvlinkDomain,omitempty"`
	ComputeMode  ComputeMode `json:"computeMode"`
	MIGCapable   bool        `json:"migCapable"`
	MIGEnabled   bool        `json:"migEnabled"`
	// MIG describes the GPU's MIG geometry; nil when not MIG capable.
	MIG *MIGInfo `json:"mig,omitempty"`
}

// MIGInfo is the MIG geometry of a GPU as read from NVML, and the instances
// that exist on it now.
type MIGInfo struct {
	// MemorySlices is the number of memory slices placements index (8 on
	// A100/H100/H200/B200).
	MemorySlices int `json:"memorySlices"`
	// ComputeSlices is the number of GPU compute slices (7 on those GPUs).
	ComputeSlices int           `json:"computeSlices"`
	Profiles      []MIGProfile  `json:"profiles"`
	Instances     []MIGInstance `json:"instances,omitempty"`
}

// MIGProfile is one GPU instance profile with the placements NVML reports.
type MIGProfile struct {
	// ID is NVML's GPU instance profile id (nvml.GPU_INSTANCE_PROFILE_*).
	ID int `json:"id"`
	// Name is the canonical profile name, e.g. "1g.18gb", "1g.18gb+me", "3g.71gb".
	Name string `json:"name"`
	// ComputeSlices is the number of compute slices (the "Ng" of the name).
	ComputeSlices int `json:"computeSlices"`
	// MemorySlices is the number of memory slices one placement covers.
	MemorySlices    int    `json:"memorySlices"`
	MemoryBytes     uint64 `json:"memoryBytes"`
	Multiprocessors int    `json:"multiprocessors"`
	CopyEngines     int    `json:"copyEngines"`
	Decoders        int    `json:"decoders"`
	Encoders        int    `json:"encoders"`
	JPEGs           int    `json:"jpegs"`
	OFAs            int    `json:"ofas"`
	// MaxInstances is how many instances of this profile fit on an empty GPU.
	MaxInstances int            `json:"maxInstances"`
	Placements   []MIGPlacement `json:"placements"`
}

// MediaExtensions reports whether the profile is a "+me" variant that owns
// the GPU's single set of media engines.
func (p MIGProfile) MediaExtensions() bool {
	return len(p.Name) > 3 && p.Name[len(p.Name)-3:] == "+me"
}

// MIGPlacement is a range of memory slices [Start, Start+Size).
type MIGPlacement struct {
	Start int `json:"start"`
	Size  int `json:"size"`
}

// End is one past the last memory slice of the placement.
func (p MIGPlacement) End() int { return p.Start + p.Size }

// Overlaps reports whether two placements share a memory slice.
func (p MIGPlacement) Overlaps(o MIGPlacement) bool {
	return p.Start < o.End() && o.Start < p.End()
}

func (p MIGPlacement) String() string { return fmt.Sprintf("%d:%d", p.Start, p.Size) }

// MIGInstance is a live GPU instance and its compute instances.
type MIGInstance struct {
	// GPUInstanceID is NVML's GPU instance id, unique per parent GPU.
	GPUInstanceID int          `json:"gpuInstanceID"`
	ProfileID     int          `json:"profileID"`
	ProfileName   string       `json:"profileName"`
	Placement     MIGPlacement `json:"placement"`
	// UUID is the MIG device UUID of the instance's first compute instance,
	// empty until a compute instance exists.
	UUID             string            `json:"uuid,omitempty"`
	ComputeInstances []ComputeInstance `json:"computeInstances,omitempty"`
}

// ComputeInstance is a compute instance inside a GPU instance.
type ComputeInstance struct {
	ID        int `json:"id"`
	ProfileID int `json:"profileID"`
}

// Profile returns the MIG profile with the given name.
func (m *MIGInfo) Profile(name string) (MIGProfile, bool) {
	if m == nil {
		return MIGProfile{}, false
	}
	i := slices.IndexFunc(m.Profiles, func(p MIGProfile) bool { return p.Name == name })
	if i < 0 {
		return MIGProfile{}, false
	}
	return m.Profiles[i], true
}

// GPU returns the GPU with the given UUID.
func (m *Machine) GPU(uuid string) (GPU, bool) {
	i := slices.IndexFunc(m.GPUs, func(g GPU) bool { return g.UUID == uuid })
	if i < 0 {
		return GPU{}, false
	}
	return m.GPUs[i], true
}
