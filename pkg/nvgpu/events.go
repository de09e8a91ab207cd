//go:build cgo

package nvgpu

import (
	"context"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"
)

// healthEventMask is what Events registers for, where the GPU supports it.
const healthEventMask = nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError |
	nvml.EventTypeGpuUnavailableError

// noInstance is NVML's "not scoped to a MIG instance" in event data.
const noInstance = 0xFFFFFFFF

func (g *nvmlMachine) Events(ctx context.Context) (<-chan Event, error) {
	devs, err := g.devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	set, ret := g.lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		return nil, nvmlError("create NVML event set", ret)
	}
	logger := klog.FromContext(ctx)
	for _, d := range devs {
		if err := register(d, set); err != nil {
			set.Free()
			return nil, err
		}
	}
	ch := make(chan Event, 16)
	go g.watch(klog.NewContext(ctx, klog.LoggerWithName(logger, "events")), set, ch)
	return ch, nil
}

func register(d device, set nvml.EventSet) error {
	supported, ret := d.GetSupportedEventTypes()
	if unsupported(ret) {
		return nil
	}
	if ret != nvml.SUCCESS {
		return nvmlError("get supported events of "+d.String(), ret)
	}
	mask := supported & healthEventMask
	if mask == 0 {
		return nil
	}
	if ret := d.RegisterEvents(mask, set); ret != nvml.SUCCESS && !unsupported(ret) {
		return nvmlError("register events of "+d.String(), ret)
	}
	return nil
}

// watch waits on the event set until ctx ends, then frees the set and
// closes ch. Each wait lasts at most g.eventPoll, which bounds how late
// cancellation is noticed.
func (g *nvmlMachine) watch(ctx context.Context, set nvml.EventSet, ch chan<- Event) {
	logger := klog.FromContext(ctx)
	defer close(ch)
	defer set.Free()
	wait := uint32(max(g.eventPoll.Milliseconds(), 1))
	for ctx.Err() == nil {
		data, ret := set.Wait(wait)
		switch ret {
		case nvml.SUCCESS:
		case nvml.ERROR_TIMEOUT:
			continue
		case nvml.ERROR_GPU_IS_LOST:
			if data.Device == nil {
				logger.Error(nvmlError("wait for events", ret), "A GPU is lost")
				continue
			}
			data.EventType = 0
		default:
			logger.Error(nvmlError("wait for events", ret), "Retrying")
			select {
			case <-ctx.Done():
			case <-time.After(g.eventPoll):
			}
			continue
		}
		ev := toEvent(data)
		if ev.GPUUUID == "" {
			logger.Info("Dropping event of unknown GPU", "type", data.EventType, "data", data.EventData)
			continue
		}
		select {
		case ch <- ev:
		case <-ctx.Done():
		}
	}
}

func toEvent(data nvml.EventData) Event {
	ev := Event{XID: data.EventData, GPUInstanceID: -1, ComputeInstanceID: -1, GPUIndex: -1}
	switch {
	case data.EventType&nvml.EventTypeXidCriticalError != 0:
		ev.Type = EventXID
	case data.EventType&nvml.EventTypeDoubleBitEccError != 0:
		ev.Type = EventDoubleBitECC
	case data.EventType&nvml.EventTypeGpuUnavailableError != 0:
		ev.Type = EventGPUUnavailable
	default:
		ev.Type = EventGPULost
	}
	if data.GpuInstanceId != noInstance {
		ev.GPUInstanceID = int(data.GpuInstanceId)
	}
	if data.ComputeInstanceId != noInstance {
		ev.ComputeInstanceID = int(data.ComputeInstanceId)
	}
	if data.Device == nil {
		return ev
	}
	if uuid, ret := data.Device.GetUUID(); ret == nvml.SUCCESS {
		ev.GPUUUID = uuid
	}
	if index, ret := data.Device.GetIndex(); ret == nvml.SUCCESS {
		ev.GPUIndex = index
	}
	return ev
}

// Answers implements Prober: the GPU answers when NVML returns its handle
// and index. Nothing is changed on the GPU.
func (g *nvmlMachine) Answers(_ context.Context, uuid string) error {
	_, err := g.device(uuid)
	return err
}
