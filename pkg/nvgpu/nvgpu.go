// Package nvgpu is Tierra's only door to NVIDIA's management library (NVML,
// through github.com/NVIDIA/go-nvml). It discovers a node's GPUs as plain
// pkg/inventory structs and performs the few mutations the driver needs: MIG
// mode, MIG GPU/compute instances, compute mode, time-slicing, and a health
// event stream.
//
// The same implementation runs over the real NVML (dlopened at New) and over
// fake machines built on go-nvml's mock servers, so the fakes exercise the
// real code: only the machine underneath differs.
package nvgpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Sentinel errors for the conditions callers act on; test with errors.Is.
var (
	// ErrLibraryNotFound: libnvidia-ml could not be loaded (no NVIDIA driver).
	ErrLibraryNotFound = errors.New("NVML library not found")
	// ErrNotFound: the GPU, MIG profile, GPU instance or compute instance
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotSupported: the GPU or driver does not support the operation.
	ErrNotSupported = errors.New("not supported")
	// ErrMIGDisabled: a MIG operation on a GPU whose MIG mode is off.
	ErrMIGDisabled = errors.New("MIG mode is disabled")
	// ErrInvalidPlacement: the placement is not one the profile allows.
	ErrInvalidPlacement = errors.New("invalid MIG placement")
	// ErrPlacementOverlap: the placement overlaps a live GPU instance.
	ErrPlacementOverlap = errors.New("MIG placement overlaps a live GPU instance")
	// ErrInstanceBusy: the instance (or GPU) still has instances inside it.
	ErrInstanceBusy = errors.New("instance busy")
	// ErrResetRequired: a MIG mode change is pending until the GPU is reset.
	ErrResetRequired = errors.New("GPU reset required")
	// ErrUnknownMachine: the --machine value names no fake machine.
	ErrUnknownMachine = errors.New("unknown machine")
	// ErrGPULost: the GPU fell off the bus or otherwise stopped answering;
	// discovery leaves it out.
	ErrGPULost = errors.New("GPU is lost")
)

// Interface is what the driver needs from the GPUs of one node. Consumers
// should depend on the smallest of the embedded interfaces they use.
type Interface interface {
	Discoverer
	MIGManager
	ComputeModeSetter
	CapResolver
	EventWatcher
	Prober
	// Close releases NVML. The Interface must not be used afterwards.
	Close() error
}

// Discoverer reads the machine.
type Discoverer interface {
	// Machine discovers every GPU with topology, MIG geometry and live
	// MIG instances.
	Machine(ctx context.Context) (inventory.Machine, error)
}

// MIGManager changes MIG mode and MIG instances.
type MIGManager interface {
	MIGMode(ctx context.Context, gpuUUID string) (MIGMode, error)
	// SetMIGMode enables or disables MIG. It fails with ErrInstanceBusy when
	// disabling a GPU with live GPU instances and with ErrResetRequired when
	// the change only takes effect after a GPU reset.
	SetMIGMode(ctx context.Context, gpuUUID string, enabled bool) error
	// CreateMIGInstance creates a GPU instance of a profile at a placement,
	// and one compute instance spanning it.
	CreateMIGInstance(ctx context.Context, opts CreateMIGOptions) (inventory.MIGInstance, error)
	DestroyComputeInstance(ctx context.Context, ref ComputeInstanceRef) error
	// DestroyGPUInstance fails with ErrInstanceBusy while compute instances
	// exist inside the GPU instance.
	DestroyGPUInstance(ctx context.Context, gpuUUID string, gpuInstanceID int) error
}

// ComputeModeSetter sets a GPU's compute mode.
type ComputeModeSetter interface {
	SetComputeMode(ctx context.Context, gpuUUID string, mode inventory.ComputeMode) error
}

// EventWatcher streams health events.
type EventWatcher interface {
	// Events registers every GPU for critical events and delivers them on
	// the returned channel until ctx is cancelled; then the channel closes.
	Events(ctx context.Context) (<-chan Event, error)
}

// MIGMode is a GPU's current and pending (after reset) MIG mode.
type MIGMode struct {
	Enabled        bool
	PendingEnabled bool
}

// CreateMIGOptions says which GPU instance to create.
type CreateMIGOptions struct {
	GPUUUID string
	// Profile is the canonical profile name, e.g. "3g.71gb".
	Profile   string
	Placement inventory.MIGPlacement
}

// ComputeInstanceRef names a compute instance.
type ComputeInstanceRef struct {
	GPUUUID           string
	GPUInstanceID     int
	ComputeInstanceID int
}

// EventType is the kind of a health event.
type EventType string

const (
	EventXID            EventType = "XidCriticalError"
	EventDoubleBitECC   EventType = "DoubleBitEccError"
	EventGPUUnavailable EventType = "GpuUnavailable"
	// EventGPULost: NVML reported the GPU as lost while waiting for events.
	EventGPULost EventType = "GpuLost"
)

// Event is one health event of one GPU.
type Event struct {
	GPUUUID  string
	GPUIndex int
	Type     EventType
	// XID is the XID code of an EventXID, otherwise NVML's event data.
	XID uint64
	// GPUInstanceID and ComputeInstanceID scope the event to a MIG
	// instance; -1 when the event concerns the whole GPU.
	GPUInstanceID     int
	ComputeInstanceID int
}

// Options configure New.
type Options struct {
	// Machine selects the machine: "" for the real NVML, "fake:<name>" for
	// a fake machine (see FakeMachines).
	Machine string
	// SysfsRoot is where PCI topology is read on real hardware; "" is /sys.
	SysfsRoot string
	// CapsRoot is where MIG capabilities are read on real hardware; "" is
	// /proc/driver/nvidia/capabilities.
	CapsRoot string
	// EventPoll bounds how long one NVML event wait blocks, and so how
	// quickly Events notices cancellation; 0 means one second.
	EventPoll time.Duration
}

// EnableMIG puts every MIG-capable GPU of g that is not yet in MIG mode into
// it, as an admin does on an inference node, and returns the machine as it
// is afterwards.
func EnableMIG(ctx context.Context, g Interface) (inventory.Machine, error) {
	m, err := g.Machine(ctx)
	if err != nil {
		return m, err
	}
	for _, gpu := range m.GPUs {
		if gpu.MIGCapable && !gpu.MIGEnabled {
			if err := g.SetMIGMode(ctx, gpu.UUID, true); err != nil {
				return inventory.Machine{}, fmt.Errorf("enable MIG on GPU %d: %w", gpu.Index, err)
			}
		}
	}
	return g.Machine(ctx)
}

// fakeMachines names the fake machines (fake_machines.go builds them).
var fakeMachines = []string{"dgxa100", "dgxb200", "dgxh100", "dgxh200", "l4x4", "mixed"}

// FakeMachines lists the fake machine names, sorted.
func FakeMachines() []string { return slices.Clone(fakeMachines) }

// FakePrefix starts a Machine value that selects a fake machine. Callers
// spell it in messages and build values with it; whether a value is fake
// is for IsFake and ParseMachine to say.
const FakePrefix = "fake:"

// IsFake reports whether machine (an Options.Machine value) selects a fake
// machine rather than the real NVML. It does not check the fake's name:
// ParseMachine does.
func IsFake(machine string) bool { return strings.HasPrefix(machine, FakePrefix) }

// ParseMachine checks an Options.Machine value as New would: "" is the real
// NVML (fake is ""), FakePrefix+name a fake machine of FakeMachines (fake is
// its name). Any other value fails with ErrUnknownMachine.
func ParseMachine(machine string) (fake string, err error) {
	name, ok := strings.CutPrefix(machine, FakePrefix)
	switch {
	case machine == "":
		return "", nil
	case !ok:
		return "", fmt.Errorf("machine %q: want \"\" (real NVML) or %s<name> with name one of %s: %w",
			machine, FakePrefix, strings.Join(FakeMachines(), ", "), ErrUnknownMachine)
	case !slices.Contains(fakeMachines, name):
		return "", fmt.Errorf("fake machine %q: want one of %s: %w", name,
			strings.Join(FakeMachines(), ", "), ErrUnknownMachine)
	}
	return name, nil
}

// New opens the machine Options.Machine names: the real NVML, or a fake
// machine. Either comes with its CapResolver, so callers need not tell
// them apart.
func New(ctx context.Context, opts Options) (Interface, error) {
	fake, err := ParseMachine(opts.Machine)
	if err != nil {
		return nil, err
	}
	if fake == "" {
		g, err := newReal(ctx, opts)
		if err != nil {
			return nil, err // not a typed nil *nvmlMachine inside the Interface
		}
		return g, nil
	}
	f, err := NewFake(ctx, fake, opts)
	if err != nil {
		return nil, err // not a typed nil *Fake inside the Interface
	}
	return f, nil
}
