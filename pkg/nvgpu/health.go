package nvgpu

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
)

// Prober asks whether a GPU answers NVML, read-only: the health state
// machine clears a GPU's taint only once it does again.
type Prober interface {
	// Answers is nil when NVML returns the GPU's handle and index; it
	// matches ErrGPULost for a GPU off the bus and ErrNotFound for an
	// unknown one.
	Answers(ctx context.Context, gpuUUID string) error
}

// FakeFaultsEnv names a directory through which another process (the node
// simulator, a demo) injects hardware faults into the fake machine of the
// plugin it runs: each FakeFault is a JSON file there (WriteFakeFault), which
// the fake applies in name order and removes. A fault that no event watch
// could receive yet (the plugin is starting) stays until one can.
const FakeFaultsEnv = "TIERRA_FAKE_FAULTS"

// FakeFaultKind is what a FakeFault does to the GPU.
type FakeFaultKind string

const (
	// FaultXID raises an XID critical error (FakeFault.XID).
	FaultXID FakeFaultKind = "xid"
	// FaultDoubleBitECC raises a double-bit ECC error.
	FaultDoubleBitECC FakeFaultKind = "ecc"
	// FaultLost takes the GPU off the bus (Fake.LoseGPU).
	FaultLost FakeFaultKind = "lost"
	// FaultHeal puts a lost GPU back on the bus (Fake.RestoreGPU).
	FaultHeal FakeFaultKind = "heal"
)

// FakeFault is one fault to inject into GPU index GPU of a fake machine.
type FakeFault struct {
	GPU  int           `json:"gpu"`
	Kind FakeFaultKind `json:"kind"`
	XID  uint64        `json:"xid,omitempty"`
	// GPUInstance and ComputeInstance scope an XID to a MIG instance, as
	// NVML's event data does; nil concerns the whole GPU.
	GPUInstance     *int `json:"gpuInstance,omitempty"`
	ComputeInstance *int `json:"computeInstance,omitempty"`
}

var faultSeq atomic.Uint64

// WriteFakeFault drops fault into dir (see FakeFaultsEnv) atomically: a
// temporary file renamed to a name that sorts after every earlier fault.
func WriteFakeFault(dir string, fault FakeFault) error {
	data, err := json.Marshal(fault)
	if err != nil {
		return fmt.Errorf("encode fake fault: %w", err)
	}
	name := fmt.Sprintf("%020d-%06d.json", time.Now().UnixNano(), faultSeq.Add(1)%1_000_000)
	if err := atomicfile.Write(filepath.Join(dir, name), data, false); err != nil {
		return fmt.Errorf("write fake fault: %w", err)
	}
	return nil
}
