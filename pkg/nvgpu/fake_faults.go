//go:build cgo

package nvgpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"
)

// InjectDoubleBitECC raises a double-bit (uncorrectable) ECC error on GPU
// index.
func (f *Fake) InjectDoubleBitECC(index int) error {
	return f.InjectEvent(index, nvml.EventTypeDoubleBitEccError, 0)
}

// InjectMIGXID raises an XID on the MIG instance (GPU instance gi, compute
// instance ci; -1 for "not scoped", as NVML leaves it) of GPU index.
func (f *Fake) InjectMIGXID(index, gi, ci int, xid uint64) error {
	scope := func(id int) uint32 {
		if id < 0 {
			return noInstance
		}
		return uint32(id)
	}
	return f.deliver(index, nvml.EventTypeXidCriticalError, fakeEvent{data: nvml.EventData{
		EventType: nvml.EventTypeXidCriticalError, EventData: xid,
		GpuInstanceId: scope(gi), ComputeInstanceId: scope(ci)}, ret: nvml.SUCCESS})
}

// RestoreGPU puts a GPU LoseGPU took off the bus back: NVML answers for it
// again and discovery publishes it. Restoring a GPU that is not lost does
// nothing.
func (f *Fake) RestoreGPU(index int) error {
	if index < 0 || index >= len(f.server.Devices) {
		return fmt.Errorf("restore GPU %d of %s: %w", index, f.name, ErrNotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.lost, index)
	return nil
}

// ApplyFault injects one FakeFault.
func (f *Fake) ApplyFault(fault FakeFault) error {
	switch fault.Kind {
	case FaultXID:
		gi, ci := -1, -1
		if fault.GPUInstance != nil {
			gi = *fault.GPUInstance
		}
		if fault.ComputeInstance != nil {
			ci = *fault.ComputeInstance
		}
		return f.InjectMIGXID(fault.GPU, gi, ci, fault.XID)
	case FaultDoubleBitECC:
		return f.InjectDoubleBitECC(fault.GPU)
	case FaultLost:
		return f.LoseGPU(fault.GPU)
	case FaultHeal:
		return f.RestoreGPU(fault.GPU)
	default:
		return fmt.Errorf("fake fault %q: want %s, %s, %s or %s", fault.Kind, FaultXID, FaultDoubleBitECC, FaultLost, FaultHeal)
	}
}

// faultPoll is how often the fake looks into its FakeFaultsEnv directory.
const faultPoll = 20 * time.Millisecond

// serveFaults applies the faults dropped into dir until stop closes; done
// closes when it has returned.
func (f *Fake) serveFaults(ctx context.Context, dir string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	logger := klog.FromContext(ctx).WithValues("faults", dir)
	ticker := time.NewTicker(faultPoll)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if err := f.applyFaultFiles(dir); err != nil {
			logger.Error(err, "Applying injected faults")
		}
	}
}

// applyFaultFiles applies the fault files of dir in name order and removes
// each one applied or malformed; it stops at the first that no event watch
// can receive yet, to retry it (and keep the order) on the next poll.
func (f *Fake) applyFaultFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read fake faults: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("read fake fault: %w", err))...)
		}
		var fault FakeFault
		if err := json.Unmarshal(data, &fault); err != nil {
			errs = append(errs, fmt.Errorf("decode fake fault %s: %w", name, err))
		} else if err := f.ApplyFault(fault); errors.Is(err, ErrNotFound) && fault.GPU >= 0 && fault.GPU < len(f.server.Devices) {
			return errors.Join(errs...) // no event set yet: retry
		} else if err != nil {
			errs = append(errs, fmt.Errorf("fake fault %s: %w", name, err))
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("remove fake fault: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops serving injected faults and releases the mock NVML.
func (f *Fake) Close() error {
	if f.stopFaults != nil {
		close(f.stopFaults)
		<-f.faultsDone
		f.stopFaults = nil
	}
	return f.nvmlMachine.Close()
}
