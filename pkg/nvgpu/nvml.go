//go:build cgo

package nvgpu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// nvmlMachine implements Interface over any nvml.Interface: the real library or a
// fake machine's mock server.
type nvmlMachine struct {
	lib       nvml.Interface
	host      hostTopology
	eventPoll time.Duration
	// caps reads MIG capabilities from /proc; a Fake numbers its own.
	caps procCaps
	// mu serialises MIG changes so that the overlap check and the create
	// are atomic with respect to this process.
	mu sync.Mutex
}

var _ Interface = (*nvmlMachine)(nil)

// hostTopology answers what NVML does not: where a PCI device hangs in the
// host's PCIe tree.
type hostTopology interface {
	// PCIeRoot returns the root complex ("pci0000:15") of a PCI device.
	PCIeRoot(busID string) (string, bool)
}

const defaultEventPoll = time.Second

func newGPUs(lib nvml.Interface, host hostTopology, opts Options) (*nvmlMachine, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, libraryNotFoundError{}
		}
		return nil, nvmlError("initialise NVML", ret)
	}
	g := &nvmlMachine{lib: lib, host: host, eventPoll: opts.EventPoll}
	if g.eventPoll <= 0 {
		g.eventPoll = defaultEventPoll
	}
	return g, nil
}

func newReal(ctx context.Context, opts Options) (*nvmlMachine, error) {
	root := opts.SysfsRoot
	if root == "" {
		root = "/sys"
	}
	g, err := newGPUs(nvml.New(), sysfs{root: root}, opts)
	if err != nil {
		return nil, err
	}
	g.caps = procCaps{root: opts.CapsRoot}
	if g.caps.root == "" {
		g.caps.root = procCapsRoot
	}
	klog.FromContext(ctx).V(2).Info("NVML initialised", "sysfs", root, "caps", g.caps.root)
	return g, nil
}

// MIGCaps implements CapResolver from the driver's /proc listing.
func (g *nvmlMachine) MIGCaps(gpu inventory.GPU, gpuInstanceID, computeInstanceID int) ([]string, error) {
	return g.caps.MIGCaps(gpu, gpuInstanceID, computeInstanceID)
}

func (g *nvmlMachine) Close() error {
	if ret := g.lib.Shutdown(); ret != nvml.SUCCESS {
		return nvmlError("shut down NVML", ret)
	}
	return nil
}

// libraryNotFoundError is ErrLibraryNotFound said as one sentence that
// tells the user what to do.
type libraryNotFoundError struct{}

func (libraryNotFoundError) Error() string {
	return fmt.Sprintf("NVML could not be loaded (libnvidia-ml.so.1), so no NVIDIA driver appears to be installed; "+
		"use --machine %sdgxh200 (fakes: %s) to run with a fake machine", FakePrefix, strings.Join(FakeMachines(), ", "))
}

func (libraryNotFoundError) Unwrap() error { return ErrLibraryNotFound }

// returnError is a failed NVML call. It matches ErrNotFound and
// ErrNotSupported for the NVML codes that mean those.
type returnError struct {
	op  string
	ret nvml.Return
}

func nvmlError(op string, ret nvml.Return) error { return &returnError{op: op, ret: ret} }

func (e *returnError) Error() string { return fmt.Sprintf("%s: NVML: %s", e.op, e.ret.Error()) }

func (e *returnError) Unwrap() error { return e.ret }

func (e *returnError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.ret == nvml.ERROR_NOT_FOUND
	case ErrNotSupported:
		return e.ret == nvml.ERROR_NOT_SUPPORTED || e.ret == nvml.ERROR_FUNCTION_NOT_FOUND
	case ErrGPULost:
		return e.ret == nvml.ERROR_GPU_IS_LOST
	}
	return false
}

// unsupported reports whether an NVML return means "this GPU or driver
// cannot answer", which discovery treats as "unknown" rather than failure.
func unsupported(ret nvml.Return) bool {
	return ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_FUNCTION_NOT_FOUND ||
		ret == nvml.ERROR_INVALID_ARGUMENT || ret == nvml.ERROR_NOT_FOUND
}

// device is a GPU handle with the names errors use.
type device struct {
	nvml.Device
	uuid  string
	index int
}

func (d device) String() string { return fmt.Sprintf("GPU %d (%s)", d.index, d.uuid) }

func (g *nvmlMachine) device(uuid string) (device, error) {
	h, ret := g.lib.DeviceGetHandleByUUID(uuid)
	if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
		return device{}, fmt.Errorf("GPU %s: %w", uuid, ErrNotFound)
	}
	if ret != nvml.SUCCESS {
		return device{}, nvmlError("get GPU "+uuid, ret)
	}
	index, ret := h.GetIndex()
	if ret != nvml.SUCCESS {
		return device{}, nvmlError("get index of GPU "+uuid, ret)
	}
	return device{Device: h, uuid: uuid, index: index}, nil
}

func (g *nvmlMachine) deviceByIndex(index int) (device, error) {
	h, ret := g.lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return device{}, nvmlError(fmt.Sprintf("get GPU %d", index), ret)
	}
	uuid, ret := h.GetUUID()
	if ret != nvml.SUCCESS {
		return device{}, nvmlError(fmt.Sprintf("get UUID of GPU %d", index), ret)
	}
	return device{Device: h, uuid: uuid, index: index}, nil
}

// devices returns the GPUs that answer. A lost GPU (fallen off the bus) is
// left out with a log line: the node keeps publishing the others.
func (g *nvmlMachine) devices(ctx context.Context) ([]device, error) {
	n, ret := g.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlError("count GPUs", ret)
	}
	out := make([]device, 0, n)
	for i := range n {
		d, err := g.deviceByIndex(i)
		if errors.Is(err, ErrGPULost) {
			klog.FromContext(ctx).Error(err, "Leaving a lost GPU out", "index", i)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
