//go:build cgo

package nvgpu

import (
	"context"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

func (g *nvmlMachine) Machine(ctx context.Context) (inventory.Machine, error) {
	logger := klog.FromContext(ctx)
	driver, ret := g.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return inventory.Machine{}, nvmlError("get driver version", ret)
	}
	m := inventory.Machine{DriverVersion: driver}
	if cuda, ret := g.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		m.CUDADriverVersion = fmt.Sprintf("%d.%d", cuda/1000, cuda%1000/10)
	}
	devs, err := g.devices(ctx)
	if err != nil {
		return inventory.Machine{}, err
	}
	links := make(map[string][]string, len(devs))
	for _, d := range devs {
		gpu, peers, err := g.discoverGPU(d, driver)
		if err != nil {
			return inventory.Machine{}, err
		}
		links[gpu.PCIBusID] = peers
		m.GPUs = append(m.GPUs, gpu)
		logger.V(4).Info("Discovered GPU", "index", gpu.Index, "uuid", gpu.UUID, "product", gpu.ProductName)
	}
	assignLocalNVLinkDomains(m.GPUs, links)
	return m, nil
}

// discoverGPU reads one GPU. It returns the PCI bus ids at the far end of
// its active NVLinks (GPUs or NVSwitches) for the node-local NVLink domain.
func (g *nvmlMachine) discoverGPU(d device, driver string) (inventory.GPU, []string, error) {
	gpu := inventory.GPU{UUID: d.uuid, Index: d.index, DriverVersion: driver, NUMANode: -1}
	var ret nvml.Return
	if gpu.Minor, ret = d.GetMinorNumber(); ret != nvml.SUCCESS {
		return gpu, nil, nvmlError("get minor number of "+d.String(), ret)
	}
	if gpu.ProductName, ret = d.GetName(); ret != nvml.SUCCESS {
		return gpu, nil, nvmlError("get name of "+d.String(), ret)
	}
	arch, ret := d.GetArchitecture()
	if ret != nvml.SUCCESS && !unsupported(ret) {
		return gpu, nil, nvmlError("get architecture of "+d.String(), ret)
	}
	gpu.Architecture = architectureName(arch)
	major, minor, ret := d.GetCudaComputeCapability()
	if ret != nvml.SUCCESS {
		return gpu, nil, nvmlError("get compute capability of "+d.String(), ret)
	}
	gpu.CUDAComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	mem, err := memoryTotal(d)
	if err != nil {
		return gpu, nil, err
	}
	gpu.MemoryBytes = mem
	if err := g.discoverTopology(d, &gpu); err != nil {
		return gpu, nil, err
	}
	peers, err := activeNVLinkPeers(d)
	if err != nil {
		return gpu, nil, err
	}
	if gpu.ComputeMode, err = computeMode(d); err != nil {
		return gpu, nil, err
	}
	if err := discoverMIG(d, &gpu); err != nil {
		return gpu, nil, err
	}
	return gpu, peers, nil
}

func memoryTotal(d device) (uint64, error) {
	if m, ret := d.GetMemoryInfo_v2(); ret == nvml.SUCCESS {
		return m.Total, nil
	} else if !unsupported(ret) {
		return 0, nvmlError("get memory of "+d.String(), ret)
	}
	m, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return 0, nvmlError("get memory of "+d.String(), ret)
	}
	return m.Total, nil
}

func architectureName(a nvml.DeviceArchitecture) string {
	names := map[nvml.DeviceArchitecture]string{
		nvml.DEVICE_ARCH_KEPLER:    "Kepler",
		nvml.DEVICE_ARCH_MAXWELL:   "Maxwell",
		nvml.DEVICE_ARCH_PASCAL:    "Pascal",
		nvml.DEVICE_ARCH_VOLTA:     "Volta",
		nvml.DEVICE_ARCH_TURING:    "Turing",
		nvml.DEVICE_ARCH_AMPERE:    "Ampere",
		nvml.DEVICE_ARCH_ADA:       "Ada Lovelace",
		nvml.DEVICE_ARCH_HOPPER:    "Hopper",
		nvml.DEVICE_ARCH_BLACKWELL: "Blackwell",
		nvml.DEVICE_ARCH_RUBIN:     "Rubin",
	}
	if n, ok := names[a]; ok {
		return n
	}
	return "Unknown"
}

var computeModes = map[nvml.ComputeMode]inventory.ComputeMode{
	nvml.COMPUTEMODE_DEFAULT:           inventory.ComputeModeDefault,
	nvml.COMPUTEMODE_EXCLUSIVE_PROCESS: inventory.ComputeModeExclusiveProcess,
	nvml.COMPUTEMODE_PROHIBITED:        inventory.ComputeModeProhibited,
}

func computeMode(d device) (inventory.ComputeMode, error) {
	m, ret := d.GetComputeMode()
	if unsupported(ret) {
		return inventory.ComputeModeDefault, nil
	}
	if ret != nvml.SUCCESS {
		return "", nvmlError("get compute mode of "+d.String(), ret)
	}
	if cm, ok := computeModes[m]; ok {
		return cm, nil
	}
	return inventory.ComputeMode(fmt.Sprintf("Unknown(%d)", m)), nil
}

func (g *nvmlMachine) SetComputeMode(ctx context.Context, uuid string, mode inventory.ComputeMode) error {
	var want nvml.ComputeMode = -1
	for nm, cm := range computeModes {
		if cm == mode {
			want = nm
		}
	}
	if want < 0 {
		return fmt.Errorf("set compute mode of GPU %s: unknown mode %q (want %s, %s or %s)", uuid, mode,
			inventory.ComputeModeDefault, inventory.ComputeModeExclusiveProcess, inventory.ComputeModeProhibited)
	}
	d, err := g.device(uuid)
	if err != nil {
		return fmt.Errorf("set compute mode: %w", err)
	}
	if ret := d.SetComputeMode(want); ret != nvml.SUCCESS {
		return nvmlError(fmt.Sprintf("set compute mode %s on %s", mode, d), ret)
	}
	klog.FromContext(ctx).V(2).Info("Set compute mode", "gpu", d.uuid, "mode", mode)
	return nil
}
