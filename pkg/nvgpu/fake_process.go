//go:build cgo

package nvgpu

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

var _ ProcessUseReader = (*Fake)(nil)

// RunProcess starts (or, for the same PID on the same GPU, updates) a fake
// process with the use NVML is to report for it. The GPU must exist, and a
// process on a GPU in MIG mode must name a live MIG instance, one on a GPU
// without MIG mode none.
func (f *Fake) RunProcess(p FakeProcess) error {
	if err := p.Validate(); err != nil {
		return err
	}
	d := f.serverDevice(p.GPUUUID)
	if d == nil {
		return fmt.Errorf("run fake process %d on GPU %s: %w", p.PID, p.GPUUUID, ErrNotFound)
	}
	migOn := migEnabled(d)
	switch {
	case migOn && p.GPUInstance == nil:
		return fmt.Errorf("run fake process %d: GPU %s is in MIG mode: name a MIG instance: %w", p.PID, p.GPUUUID, ErrInvalidPlacement)
	case !migOn && p.GPUInstance != nil:
		return fmt.Errorf("run fake process %d: GPU %s is not in MIG mode: %w", p.PID, p.GPUUUID, ErrMIGDisabled)
	case migOn && !hasComputeInstance(d, *p.GPUInstance, *p.ComputeInstance):
		return fmt.Errorf("run fake process %d: MIG instance %d/%d on GPU %s: %w",
			p.PID, *p.GPUInstance, *p.ComputeInstance, p.GPUUUID, ErrNotFound)
	}
	f.procMu.Lock()
	defer f.procMu.Unlock()
	f.procs = slices.DeleteFunc(f.procs, func(q FakeProcess) bool { return q.PID == p.PID && q.GPUUUID == p.GPUUUID })
	f.procs = append(f.procs, p)
	return nil
}

// StopProcess ends every fake process RunProcess started with pid.
func (f *Fake) StopProcess(pid uint32) {
	f.procMu.Lock()
	defer f.procMu.Unlock()
	f.procs = slices.DeleteFunc(f.procs, func(q FakeProcess) bool { return q.PID == pid })
}

// ProcessUse implements ProcessUseReader: it reads the FakeProcessesEnv
// file (reporting a bad one as an error) and answers through NVML.
func (f *Fake) ProcessUse(ctx context.Context, since time.Time) ([]ProcessUse, error) {
	if f.procPath != "" {
		procs, err := ReadFakeProcesses(f.procPath)
		if err != nil {
			return nil, err
		}
		f.procMu.Lock()
		f.fileProcs = procs
		f.procMu.Unlock()
	}
	return f.nvmlMachine.ProcessUse(ctx, since)
}

func (f *Fake) serverDevice(uuid string) *server.Device {
	for _, dev := range f.server.Devices {
		if d := dev.(*server.Device); d.UUID == uuid {
			return d
		}
	}
	return nil
}

func migEnabled(d *server.Device) bool {
	d.RLock()
	defer d.RUnlock()
	return d.MigMode == nvml.DEVICE_MIG_ENABLE
}

func hasComputeInstance(d *server.Device, gi, ci int) bool {
	return slices.ContainsFunc(liveComputeInstances(d), func(c *server.ComputeInstance) bool {
		return int(c.Info.GpuInstance.(*server.GpuInstance).Info.Id) == gi && int(c.Info.Id) == ci
	})
}

// processesOn lists the fake processes that run on GPU d (in MIG instance
// gi/ci, or in any instance when gi is -1) and whose placement matches the
// GPU's MIG mode: a process in a MIG instance that is gone is not running.
func (f *Fake) processesOn(d *server.Device, gi, ci int) []FakeProcess {
	f.procMu.Lock()
	all := append(slices.Clone(f.fileProcs), f.procs...)
	f.procMu.Unlock()
	migOn := migEnabled(d)
	var out []FakeProcess
	for _, p := range all {
		if p.GPUUUID != d.UUID || (p.GPUInstance != nil) != migOn {
			continue
		}
		if migOn {
			if !hasComputeInstance(d, *p.GPUInstance, *p.ComputeInstance) ||
				(gi >= 0 && (*p.GPUInstance != gi || *p.ComputeInstance != ci)) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func processInfos(procs []FakeProcess) []nvml.ProcessInfo {
	out := make([]nvml.ProcessInfo, 0, len(procs))
	for _, p := range procs {
		info := nvml.ProcessInfo{Pid: p.PID, UsedGpuMemory: p.MemoryBytes,
			GpuInstanceId: noInstance, ComputeInstanceId: noInstance}
		if p.GPUInstance != nil {
			info.GpuInstanceId, info.ComputeInstanceId = uint32(*p.GPUInstance), uint32(*p.ComputeInstance)
		}
		out = append(out, info)
	}
	return out
}

// fillProcesses answers the process queries of GPU d as NVML does: the
// parent of a MIG GPU lists the processes of every instance and takes no
// utilization samples; otherwise each process has one sample, taken now,
// with its set SM utilization (NOT_FOUND when no sample is newer than
// lastSeen).
func fillProcesses(f *Fake, d *server.Device) {
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return processInfos(f.processesOn(d, -1, -1)), nvml.SUCCESS
	}
	d.GetProcessUtilizationFunc = func(lastSeen uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		if migEnabled(d) {
			return nil, nvml.ERROR_NOT_SUPPORTED
		}
		now := uint64(time.Now().UnixMicro())
		var out []nvml.ProcessUtilizationSample
		for _, p := range f.processesOn(d, -1, -1) {
			if now > lastSeen {
				out = append(out, nvml.ProcessUtilizationSample{Pid: p.PID, TimeStamp: now, SmUtil: p.SMPercent})
			}
		}
		if len(out) == 0 {
			return nil, nvml.ERROR_NOT_FOUND
		}
		return out, nvml.SUCCESS
	}
}

// fillMIGProcesses answers the process queries of a MIG device handle.
func fillMIGProcesses(f *Fake, parent *server.Device, h nvml.Device) {
	m, ok := h.(*mock.Device)
	if !ok {
		return
	}
	gi, _ := m.GetGpuInstanceId()
	ci, _ := m.GetComputeInstanceId()
	m.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return processInfos(f.processesOn(parent, gi, ci)), nvml.SUCCESS
	}
	m.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		return nil, nvml.ERROR_NOT_SUPPORTED
	}
}
