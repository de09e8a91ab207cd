//go:build cgo

package nvgpu

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// fakeSupportedEvents is what a datacenter GPU reports as supported.
const fakeSupportedEvents = nvml.EventTypeSingleBitEccError | nvml.EventTypeDoubleBitEccError |
	nvml.EventTypePState | nvml.EventTypeXidCriticalError | nvml.EventTypeClock

// fakeMaxMigDevices is NVML's GetMaxMigDeviceCount on 7-slice GPUs.
const fakeMaxMigDevices = 7

// fillDevice sets the mock device's nil ...Func fields the driver calls
// (the mock panics on those) from the machine spec.
func fillDevice(f *Fake, d *server.Device, spec fakeSpec, index int) {
	pci := fakePciInfo(spec.busIDs[index], d.Config.PciDeviceId)
	d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return pci, nvml.SUCCESS }
	numa := spec.numa[index]
	d.GetNumaNodeIdFunc = func() (int, nvml.Return) { return numa, nvml.SUCCESS }
	fillNVLink(f, d, spec, index)
	fillComputeMode(d)
	fillProcesses(f, d)
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		total := d.Config.MemoryMB * mib
		reserved := uint64(512 * mib)
		return nvml.Memory_v2{Total: total, Reserved: reserved, Free: total - reserved}, nvml.SUCCESS
	}
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		total := d.Config.MemoryMB * mib
		return nvml.Memory{Total: total, Free: total - 512*mib, Used: 512 * mib}, nvml.SUCCESS
	}
	d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return fakeSupportedEvents, nvml.SUCCESS }
	d.RegisterEventsFunc = func(mask uint64, set nvml.EventSet) nvml.Return {
		return f.registerEvents(d, mask, set)
	}
	if d.Config.MIGProfiles.GpuInstanceProfiles == nil {
		fillNoMIG(d)
		return
	}
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return fakeMaxMigDevices, nvml.SUCCESS }
	d.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		cis := liveComputeInstances(d)
		if i < 0 || i >= fakeMaxMigDevices {
			return nil, nvml.ERROR_INVALID_ARGUMENT
		}
		if i >= len(cis) {
			return nil, nvml.ERROR_NOT_FOUND
		}
		h := migDevice(f.name, d, cis[i])
		fillMIGProcesses(f, d, h)
		return h, nvml.SUCCESS
	}
	d.GetGpuInstanceByIdFunc = func(id int) (nvml.GpuInstance, nvml.Return) {
		d.RLock()
		defer d.RUnlock()
		for gi := range d.GpuInstances {
			if int(gi.Info.Id) == id {
				return gi, nvml.SUCCESS
			}
		}
		return nil, nvml.ERROR_NOT_FOUND
	}
}

func fakePciInfo(busID string, deviceID uint32) nvml.PciInfo {
	var domain, bus, dev, fn uint32
	if _, err := fmt.Sscanf(busID, "%x:%x:%x.%x", &domain, &bus, &dev, &fn); err != nil {
		panic(fmt.Sprintf("fake PCI bus id %q: %v", busID, err)) // specs are constants
	}
	p := nvml.PciInfo{Domain: domain, Bus: bus, Device: dev, PciDeviceId: deviceID}
	// NVML writes an eight-digit domain in upper case.
	copyCString(p.BusId[:], fmt.Sprintf("%08X:%02X:%02X.%X", domain, bus, dev, fn))
	copyCString(p.BusIdLegacy[:], fmt.Sprintf("%04X:%02X:%02X.%X", domain, bus, dev, fn))
	return p
}

func copyCString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

// fillNVLink wires links to NVSwitches or to group peers, and the fabric.
func fillNVLink(f *Fake, d *server.Device, spec fakeSpec, index int) {
	nl := spec.nvlink
	var remotes []string
	switch {
	case nl.switches > 0:
		for l := range nl.links {
			remotes = append(remotes, fmt.Sprintf("0000:%02x:00.0", 0xe0+l%nl.switches))
		}
	case len(nl.groups) > 0:
		for _, g := range nl.groups {
			if !slices.Contains(g, index) {
				continue
			}
			peers := slices.DeleteFunc(slices.Clone(g), func(i int) bool { return i == index })
			for l := range nl.links {
				remotes = append(remotes, spec.busIDs[peers[l%len(peers)]])
			}
		}
	}
	d.GetNvLinkStateFunc = func(link int) (nvml.EnableState, nvml.Return) {
		if len(remotes) == 0 {
			return nvml.FEATURE_DISABLED, nvml.ERROR_NOT_SUPPORTED
		}
		if link < 0 || link >= len(remotes) {
			return nvml.FEATURE_DISABLED, nvml.ERROR_INVALID_ARGUMENT
		}
		return nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	d.GetNvLinkRemotePciInfoFunc = func(link int) (nvml.PciInfo, nvml.Return) {
		if link < 0 || link >= len(remotes) {
			return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
		}
		return fakePciInfo(remotes[link], 0), nvml.SUCCESS
	}
	d.GetGpuFabricInfoFunc = func() (nvml.GpuFabricInfo, nvml.Return) {
		if !nl.fabric {
			return nvml.GpuFabricInfo{State: nvml.GPU_FABRIC_STATE_NOT_SUPPORTED}, nvml.ERROR_NOT_SUPPORTED
		}
		info := nvml.GpuFabricInfo{CliqueId: 1, State: nvml.GPU_FABRIC_STATE_COMPLETED, Status: uint32(nvml.SUCCESS)}
		info.ClusterUuid = fakeID(f.name, "fabric")
		return info, nvml.SUCCESS
	}
}

func fillComputeMode(d *server.Device) {
	var mu sync.Mutex
	mode := nvml.COMPUTEMODE_DEFAULT
	d.GetComputeModeFunc = func() (nvml.ComputeMode, nvml.Return) {
		mu.Lock()
		defer mu.Unlock()
		return mode, nvml.SUCCESS
	}
	d.SetComputeModeFunc = func(m nvml.ComputeMode) nvml.Return {
		if m < nvml.COMPUTEMODE_DEFAULT || m > nvml.COMPUTEMODE_EXCLUSIVE_PROCESS {
			return nvml.ERROR_INVALID_ARGUMENT
		}
		mu.Lock()
		defer mu.Unlock()
		mode = m
		return nvml.SUCCESS
	}
}

// fillNoMIG makes a GPU without MIG answer like one: NOT_SUPPORTED.
func fillNoMIG(d *server.Device) {
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	d.SetMigModeFunc = func(int) (nvml.Return, nvml.Return) {
		return nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_NOT_SUPPORTED
	}
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
}

// liveComputeInstances lists a GPU's compute instances in a stable order
// (GPU instance id, compute instance id), as MIG device indices.
func liveComputeInstances(d *server.Device) []*server.ComputeInstance {
	d.RLock()
	defer d.RUnlock()
	var out []*server.ComputeInstance
	for gi := range d.GpuInstances {
		gi.RLock()
		for ci := range gi.ComputeInstances {
			out = append(out, ci)
		}
		gi.RUnlock()
	}
	slices.SortFunc(out, func(a, b *server.ComputeInstance) int {
		giA, giB := a.Info.GpuInstance.(*server.GpuInstance), b.Info.GpuInstance.(*server.GpuInstance)
		return cmp.Or(cmp.Compare(giA.Info.Id, giB.Info.Id), cmp.Compare(a.Info.Id, b.Info.Id))
	})
	return out
}

// migDevice is the MIG device handle of a compute instance.
func migDevice(machine string, parent *server.Device, ci *server.ComputeInstance) nvml.Device {
	giID := int(ci.Info.GpuInstance.(*server.GpuInstance).Info.Id)
	ciID := int(ci.Info.Id)
	uuid := fakeUUID("MIG-", machine, parent.UUID, fmt.Sprint(giID), fmt.Sprint(ciID))
	return &mock.Device{
		GetUUIDFunc:              func() (string, nvml.Return) { return uuid, nvml.SUCCESS },
		GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return giID, nvml.SUCCESS },
		GetComputeInstanceIdFunc: func() (int, nvml.Return) { return ciID, nvml.SUCCESS },
		IsMigDeviceHandleFunc:    func() (bool, nvml.Return) { return true, nvml.SUCCESS },
		GetDeviceHandleFromMigDeviceHandleFunc: func() (nvml.Device, nvml.Return) {
			return parent, nvml.SUCCESS
		},
	}
}
