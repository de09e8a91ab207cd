//go:build cgo

package nvgpu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Fake is a fake machine: a go-nvml mock server with the gaps filled,
// driven by the same implementation as the real NVML. Tests use its extra
// methods to inject hardware events.
type Fake struct {
	*nvmlMachine
	name   string
	server *server.Server

	mu   sync.Mutex
	sets map[*fakeEventSet]struct{}
	// lost are the indexes of GPUs LoseGPU took off the bus.
	lost map[int]bool

	// statePath is the FakeStateEnv file; "" keeps the state in memory.
	statePath string
	stateMu   sync.Mutex

	// stopFaults ends serveFaults (FakeFaultsEnv), which closes faultsDone.
	stopFaults chan struct{}
	faultsDone chan struct{}

	// procPath is the FakeProcessesEnv file; procs are the processes
	// RunProcess started and fileProcs those the file listed when last read.
	procPath  string
	procMu    sync.Mutex
	procs     []FakeProcess
	fileProcs []FakeProcess
}

var _ Interface = (*Fake)(nil)

// NewFake builds the named fake machine (see FakeMachines).
func NewFake(ctx context.Context, name string, opts Options) (*Fake, error) {
	spec, ok := fakeSpecs[name]
	if !ok {
		return nil, fmt.Errorf("fake machine %q: want one of %s: %w", name,
			strings.Join(FakeMachines(), ", "), ErrUnknownMachine)
	}
	f := &Fake{name: name, server: spec.newServer(), sets: map[*fakeEventSet]struct{}{}, lost: map[int]bool{},
		procPath: os.Getenv(FakeProcessesEnv)}
	f.server.EventSetCreateFunc = f.createEventSet
	byIndex := f.server.DeviceGetHandleByIndexFunc
	f.server.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		f.mu.Lock()
		lost := f.lost[i]
		f.mu.Unlock()
		if lost {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return byIndex(i)
	}
	byUUID := f.server.DeviceGetHandleByUUIDFunc
	f.server.DeviceGetHandleByUUIDFunc = func(uuid string) (nvml.Device, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.lost {
			if f.server.Devices[i].(*server.Device).UUID == uuid {
				return nil, nvml.ERROR_GPU_IS_LOST
			}
		}
		return byUUID(uuid)
	}
	host := fakeHost{}
	for i, dev := range f.server.Devices {
		d := dev.(*server.Device)
		d.UUID = fakeUUID("GPU-", name, fmt.Sprint(i))
		d.PciBusID = spec.busIDs[i]
		host[spec.busIDs[i]] = spec.roots[i]
		fillDevice(f, d, spec, i)
	}
	g, err := newGPUs(f.server, host, opts)
	if err != nil {
		return nil, fmt.Errorf("fake machine %s: %w", name, err)
	}
	f.nvmlMachine = g
	if spec.setup != nil {
		if err := spec.setup(f); err != nil {
			return nil, fmt.Errorf("prepare fake machine %s: %w", name, err)
		}
	}
	if path := os.Getenv(FakeStateEnv); path != "" {
		if err := f.loadState(path); err != nil {
			return nil, fmt.Errorf("fake machine %s: %w", name, err)
		}
	}
	if dir := os.Getenv(FakeFaultsEnv); dir != "" {
		f.stopFaults, f.faultsDone = make(chan struct{}), make(chan struct{})
		go f.serveFaults(ctx, dir, f.stopFaults, f.faultsDone)
	}
	klog.FromContext(ctx).V(2).Info("Fake machine ready", "machine", name, "gpus", len(f.server.Devices))
	return f, nil
}

// Name is the fake machine's name.
func (f *Fake) Name() string { return f.name }

// MIGCaps implements CapResolver on the fake machine: the instance must
// exist on it, as its /proc entry must on a real GPU, and its nodes are
// numbered from the GPU's minor and the instance IDs (fakeCapNodes).
func (f *Fake) MIGCaps(gpu inventory.GPU, gpuInstanceID, computeInstanceID int) ([]string, error) {
	f.nvmlMachine.mu.Lock()
	defer f.nvmlMachine.mu.Unlock()
	d, err := f.device(gpu.UUID)
	if err != nil {
		return nil, fmt.Errorf("MIG capability: %w", err)
	}
	l, err := f.findInstance(d, gpuInstanceID)
	if err != nil {
		return nil, fmt.Errorf("MIG capability: %w", err)
	}
	if !slices.ContainsFunc(l.inv.ComputeInstances, func(c inventory.ComputeInstance) bool { return c.ID == computeInstanceID }) {
		return nil, fmt.Errorf("MIG capability: compute instance %d of GPU instance %d on %s: %w",
			computeInstanceID, gpuInstanceID, d, ErrNotFound)
	}
	return fakeCapNodes(gpu, gpuInstanceID, computeInstanceID), nil
}

// fakeUUID is a stable UUID-shaped id, so output and tests do not change
// between runs (the mocks use random ones).
func fakeUUID(prefix string, parts ...string) string {
	id := fakeID(parts...)
	h := hex.EncodeToString(id[:])
	return prefix + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func fakeID(parts ...string) [16]byte {
	sum := sha256.Sum256([]byte("tierra-fake/" + strings.Join(parts, "/")))
	return [16]byte(sum[:16])
}

// fakeHost answers PCIe roots from the spec, as sysfs would.
type fakeHost map[string]string

func (h fakeHost) PCIeRoot(busID string) (string, bool) {
	r, ok := h[busID]
	return r, ok
}

// InjectEvent raises an NVML event of the given type on GPU index, as the
// driver would deliver it. It fails when no live event set listens to that
// GPU for that type, so a test cannot silently inject into nothing.
func (f *Fake) InjectEvent(index int, eventType uint64, data uint64) error {
	return f.deliver(index, eventType, fakeEvent{data: nvml.EventData{EventType: eventType, EventData: data,
		GpuInstanceId: noInstance, ComputeInstanceId: noInstance}, ret: nvml.SUCCESS})
}

// LoseGPU takes GPU index off the bus, as XID 79 does: every event set that
// watches it wakes with ERROR_GPU_IS_LOST, and from then on NVML cannot
// get its handle, so discovery leaves it out.
func (f *Fake) LoseGPU(index int) error {
	if err := f.deliver(index, 0, fakeEvent{data: nvml.EventData{GpuInstanceId: noInstance, ComputeInstanceId: noInstance},
		ret: nvml.ERROR_GPU_IS_LOST}); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	f.mu.Lock()
	f.lost[index] = true
	f.mu.Unlock()
	return nil
}

// deliver sends ev for GPU index to every event set registered for the
// event type (any type when eventType is 0).
func (f *Fake) deliver(index int, eventType uint64, ev fakeEvent) error {
	if index < 0 || index >= len(f.server.Devices) {
		return fmt.Errorf("inject event on GPU %d of %s: %w", index, f.name, ErrNotFound)
	}
	dev := f.server.Devices[index]
	ev.data.Device = dev
	f.mu.Lock()
	defer f.mu.Unlock()
	delivered := false
	for s := range f.sets {
		mask, watched := s.mask[dev]
		if !watched || (eventType != 0 && mask&eventType == 0) {
			continue
		}
		select {
		case s.events <- ev:
			delivered = true
		default:
			return fmt.Errorf("inject event on GPU %d of %s: event set full", index, f.name)
		}
	}
	if !delivered {
		return fmt.Errorf("inject event %#x on GPU %d of %s: no event set is registered for it: %w",
			eventType, index, f.name, ErrNotFound)
	}
	return nil
}

// InjectXID raises an XID critical error on GPU index.
func (f *Fake) InjectXID(index int, xid uint64) error {
	return f.InjectEvent(index, nvml.EventTypeXidCriticalError, xid)
}

// OpenEventSets is the number of NVML event sets not yet freed.
func (f *Fake) OpenEventSets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

// fakeEventSet is an NVML event set over a channel.
type fakeEventSet struct {
	mock.EventSet
	mask   map[nvml.Device]uint64
	events chan fakeEvent
}

// fakeEvent is what one Wait returns: NVML reports a lost GPU as
// ERROR_GPU_IS_LOST with the device set, not as an event type.
type fakeEvent struct {
	data nvml.EventData
	ret  nvml.Return
}

func (f *Fake) createEventSet() (nvml.EventSet, nvml.Return) {
	s := &fakeEventSet{mask: map[nvml.Device]uint64{}, events: make(chan fakeEvent, 64)}
	s.WaitFunc = func(ms uint32) (nvml.EventData, nvml.Return) {
		timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer timer.Stop()
		select {
		case ev := <-s.events:
			return ev.data, ev.ret
		case <-timer.C:
			return nvml.EventData{}, nvml.ERROR_TIMEOUT
		}
	}
	s.FreeFunc = func() nvml.Return {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.sets[s]; !ok {
			return nvml.ERROR_INVALID_ARGUMENT
		}
		delete(f.sets, s)
		return nvml.SUCCESS
	}
	f.mu.Lock()
	f.sets[s] = struct{}{}
	f.mu.Unlock()
	return s, nvml.SUCCESS
}

func (f *Fake) registerEvents(d nvml.Device, mask uint64, set nvml.EventSet) nvml.Return {
	s, ok := set.(*fakeEventSet)
	if !ok {
		return nvml.ERROR_INVALID_ARGUMENT
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sets[s]; !ok {
		return nvml.ERROR_INVALID_ARGUMENT
	}
	s.mask[d] |= mask
	return nvml.SUCCESS
}
