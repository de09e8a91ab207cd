//go:build cgo

package nvgpu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"
)

var _ ProcessUseReader = (*nvmlMachine)(nil)

// valueNotAvailable is NVML_VALUE_NOT_AVAILABLE in a process's used memory.
const valueNotAvailable = ^uint64(0)

// ProcessUse implements ProcessUseReader. A GPU that is lost, or that
// cannot list its processes, is left out with a log line: the others are
// still reported.
func (g *nvmlMachine) ProcessUse(ctx context.Context, since time.Time) ([]ProcessUse, error) {
	devs, err := g.devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("read process use: %w", err)
	}
	logger := klog.FromContext(ctx)
	var out []ProcessUse
	for _, d := range devs {
		use, err := processUseOf(d, since)
		if errors.Is(err, ErrGPULost) || errors.Is(err, ErrNotSupported) {
			logger.V(2).Info("Leaving a GPU out of process use", "gpu", d.uuid, "err", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read process use: %w", err)
		}
		out = append(out, use...)
	}
	return out, nil
}

func processUseOf(d device, since time.Time) ([]ProcessUse, error) {
	current, _, ret := d.GetMigMode()
	if ret != nvml.SUCCESS && !unsupported(ret) {
		return nil, nvmlError("get MIG mode of "+d.String(), ret)
	}
	if ret == nvml.SUCCESS && current == nvml.DEVICE_MIG_ENABLE {
		return migProcessUse(d)
	}
	procs, ret := d.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, nvmlError("list compute processes of "+d.String(), ret)
	}
	sm, known, err := smByPID(d, since)
	if err != nil {
		return nil, err
	}
	out := make([]ProcessUse, 0, len(procs))
	for _, p := range procs {
		u := processUse(d, p, "", -1, -1)
		u.SMUtilPercent, u.SMUtilKnown = sm[p.Pid], known
		out = append(out, u)
	}
	return out, nil
}

// migProcessUse lists the processes of each MIG device handle: NVML
// answers per instance there, while the parent's list needs privileges.
// NVML takes no per-process utilization samples inside MIG instances.
func migProcessUse(d device) ([]ProcessUse, error) {
	n, ret := d.GetMaxMigDeviceCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlError("count MIG devices of "+d.String(), ret)
	}
	migs, err := migHandles(d, n)
	if err != nil {
		return nil, err
	}
	var out []ProcessUse
	for _, m := range migs {
		procs, ret := m.handle.GetComputeRunningProcesses()
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("read processes of MIG device %d of %s", m.index, d), ret)
		}
		for _, p := range procs {
			out = append(out, processUse(d, p, m.uuid, m.gi, m.ci))
		}
	}
	return out, nil
}

func processUse(d device, p nvml.ProcessInfo, migUUID string, gi, ci int) ProcessUse {
	return ProcessUse{
		PID: p.Pid, GPUUUID: d.uuid, GPUIndex: d.index,
		MIGUUID: migUUID, GPUInstanceID: gi, ComputeInstanceID: ci,
		UsedMemoryBytes: p.UsedGpuMemory, UsedMemoryKnown: p.UsedGpuMemory != valueNotAvailable,
	}
}

// smByPID averages the per-process SM samples NVML took after since.
// known is false where the GPU takes no such samples.
func smByPID(d device, since time.Time) (map[uint32]float64, bool, error) {
	var lastSeen uint64 // NVML timestamps are microseconds since the epoch
	if !since.IsZero() && since.UnixMicro() > 0 {
		lastSeen = uint64(since.UnixMicro())
	}
	samples, ret := d.GetProcessUtilization(lastSeen)
	switch {
	case ret == nvml.ERROR_NOT_FOUND:
		// No sample after lastSeen: nothing ran.
		return map[uint32]float64{}, true, nil
	case unsupported(ret):
		return nil, false, nil
	case ret != nvml.SUCCESS && ret != nvml.ERROR_INSUFFICIENT_SIZE:
		// INSUFFICIENT_SIZE is go-nvml's answer when there are no samples,
		// or when more arrived between its two calls (it returns those it
		// read).
		return nil, false, nvmlError("get process utilization of "+d.String(), ret)
	}
	return meanSM(samples, lastSeen), true, nil
}

// meanSM is each PID's mean SM utilization over its samples newer than
// lastSeen.
func meanSM(samples []nvml.ProcessUtilizationSample, lastSeen uint64) map[uint32]float64 {
	sum := map[uint32]float64{}
	count := map[uint32]int{}
	for _, s := range samples {
		if s.TimeStamp <= lastSeen {
			continue
		}
		sum[s.Pid] += float64(min(s.SmUtil, 100))
		count[s.Pid]++
	}
	for pid, n := range count {
		sum[pid] /= float64(n)
	}
	return sum
}
