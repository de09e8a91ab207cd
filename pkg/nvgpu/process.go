package nvgpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
)

// ProcessUseReader reads what each process does on the node's GPUs. It is an
// optional capability: the real machine and the fakes have it; discover it
// with a type assertion on an Interface.
type ProcessUseReader interface {
	// ProcessUse lists every compute process running on a GPU or MIG
	// instance with the memory it holds and its mean SM utilization over
	// the samples NVML took after since (the zero time: every sample NVML
	// still buffers). A process on several GPUs appears once per GPU.
	ProcessUse(ctx context.Context, since time.Time) ([]ProcessUse, error)
}

// ProcessUse is one process on one GPU or MIG instance.
type ProcessUse struct {
	// PID is the process id in the host's PID namespace, as NVML reports it.
	PID uint32
	// GPUUUID and GPUIndex name the physical GPU (the parent of a MIG
	// instance), as dcgm-exporter's UUID label does.
	GPUUUID  string
	GPUIndex int
	// MIGUUID, GPUInstanceID and ComputeInstanceID name the MIG instance
	// the process runs in; "" and -1 on a GPU without MIG.
	MIGUUID           string
	GPUInstanceID     int
	ComputeInstanceID int
	// UsedMemoryBytes is the GPU memory the process holds, when
	// UsedMemoryKnown (NVML hides it from unprivileged callers).
	UsedMemoryBytes uint64
	UsedMemoryKnown bool
	// SMUtilPercent is the mean share of the GPU's SMs the process kept
	// busy over the sampled period (0-100), when SMUtilKnown. NVML does not
	// sample per-process utilization inside MIG instances.
	SMUtilPercent float64
	SMUtilKnown   bool
}

// IsMIG reports whether the process runs in a MIG instance.
func (p ProcessUse) IsMIG() bool { return p.GPUInstanceID >= 0 }

// FakeProcessesEnv names a JSON file listing the processes a fake machine
// runs (WriteFakeProcesses), so that another process (the node simulator, a
// demo) can set what NVML reports per process: the fake reads the file on
// every query, adds the processes Fake.RunProcess started, and reports those
// whose GPU (and MIG instance) exist. A missing file means no processes.
const FakeProcessesEnv = "TIERRA_FAKE_PROCESSES"

// FakeProcess is a process a fake machine runs on one GPU or MIG instance,
// with the use NVML reports for it.
type FakeProcess struct {
	PID     uint32 `json:"pid"`
	GPUUUID string `json:"gpuUUID"`
	// GPUInstance and ComputeInstance place the process in a MIG instance
	// of a GPU in MIG mode; both or neither.
	GPUInstance     *int `json:"gpuInstance,omitempty"`
	ComputeInstance *int `json:"computeInstance,omitempty"`
	// SMPercent is the SM utilization every sample reports (0-100).
	SMPercent   uint32 `json:"smPercent"`
	MemoryBytes uint64 `json:"memoryBytes"`
}

// Validate checks the fields on their own; whether the GPU and instance
// exist is the machine's to say.
func (p FakeProcess) Validate() error {
	switch {
	case p.PID == 0:
		return errors.New("fake process: pid must be positive")
	case p.GPUUUID == "":
		return fmt.Errorf("fake process %d: gpuUUID is required", p.PID)
	case (p.GPUInstance == nil) != (p.ComputeInstance == nil):
		return fmt.Errorf("fake process %d: set both gpuInstance and computeInstance, or neither", p.PID)
	case p.SMPercent > 100:
		return fmt.Errorf("fake process %d: smPercent %d is over 100", p.PID, p.SMPercent)
	}
	return nil
}

// fakeProcessFile is the FakeProcessesEnv file's content.
type fakeProcessFile struct {
	Processes []FakeProcess `json:"processes"`
}

// WriteFakeProcesses replaces the process list at path (see
// FakeProcessesEnv) atomically: a temporary file renamed over it.
func WriteFakeProcesses(path string, procs []FakeProcess) error {
	for _, p := range procs {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("write fake processes: %w", err)
		}
	}
	data, err := json.MarshalIndent(fakeProcessFile{Processes: procs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fake processes: %w", err)
	}
	if err := atomicfile.Write(path, data, false); err != nil {
		return fmt.Errorf("write fake processes: %w", err)
	}
	return nil
}

// ReadFakeProcesses reads the process list at path; a missing file is an
// empty list. Unknown fields are refused, so a typo is not a silent zero.
func ReadFakeProcesses(path string) ([]FakeProcess, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fake processes: %w", err)
	}
	defer func() { _ = f.Close() }()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var file fakeProcessFile
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("decode fake processes %s: %w", path, err)
	}
	for _, p := range file.Processes {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("fake processes %s: %w", path, err)
		}
	}
	return file.Processes, nil
}
