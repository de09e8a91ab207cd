//go:build cgo

package nvgpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// fakeState is the persisted hardware state of a fake machine.
type fakeState struct {
	Machine string         `json:"machine"`
	GPUs    []fakeGPUState `json:"gpus"`
}

type fakeGPUState struct {
	MIGMode      int           `json:"migMode"`
	ComputeMode  int           `json:"computeMode"`
	NextGPUInst  uint32        `json:"nextGPUInstance"`
	GPUInstances []fakeGIState `json:"gpuInstances,omitempty"`
}

type fakeGIState struct {
	ID, ProfileID          uint32
	Start, Size            uint32
	NextComputeInst        uint32
	ComputeInstanceProfile []uint32 `json:"ciProfiles,omitempty"`
	ComputeInstanceIDs     []uint32 `json:"ciIDs,omitempty"`
}

// SetMIGMode implements Interface and persists the state.
func (f *Fake) SetMIGMode(ctx context.Context, uuid string, enabled bool) error {
	return f.persist(f.nvmlMachine.SetMIGMode(ctx, uuid, enabled))
}

// CreateMIGInstance implements Interface and persists the state.
func (f *Fake) CreateMIGInstance(ctx context.Context, opts CreateMIGOptions) (inventory.MIGInstance, error) {
	inst, err := f.nvmlMachine.CreateMIGInstance(ctx, opts)
	return inst, f.persist(err)
}

// DestroyComputeInstance implements Interface and persists the state.
func (f *Fake) DestroyComputeInstance(ctx context.Context, ref ComputeInstanceRef) error {
	return f.persist(f.nvmlMachine.DestroyComputeInstance(ctx, ref))
}

// DestroyGPUInstance implements Interface and persists the state.
func (f *Fake) DestroyGPUInstance(ctx context.Context, uuid string, id int) error {
	return f.persist(f.nvmlMachine.DestroyGPUInstance(ctx, uuid, id))
}

// SetComputeMode implements Interface and persists the state.
func (f *Fake) SetComputeMode(ctx context.Context, uuid string, mode inventory.ComputeMode) error {
	return f.persist(f.nvmlMachine.SetComputeMode(ctx, uuid, mode))
}

// persist saves the state after a mutation (even a failed one, which may
// have changed part of it) and returns the mutation's error joined with
// the save's.
func (f *Fake) persist(opErr error) error {
	if f.statePath == "" {
		return opErr
	}
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return errors.Join(opErr, writeFakeState(f.statePath, f.snapshot()))
}

func (f *Fake) snapshot() fakeState {
	st := fakeState{Machine: f.name}
	for _, dev := range f.server.Devices {
		d := dev.(*server.Device)
		mode, _ := d.GetComputeMode()
		d.RLock()
		g := fakeGPUState{MIGMode: d.MigMode, ComputeMode: int(mode), NextGPUInst: d.GpuInstanceCounter}
		for gi := range d.GpuInstances {
			gi.RLock()
			s := fakeGIState{ID: gi.Info.Id, ProfileID: gi.Info.ProfileId, Start: gi.Info.Placement.Start,
				Size: gi.Info.Placement.Size, NextComputeInst: gi.ComputeInstanceCounter}
			for ci := range gi.ComputeInstances {
				s.ComputeInstanceIDs = append(s.ComputeInstanceIDs, ci.Info.Id)
				s.ComputeInstanceProfile = append(s.ComputeInstanceProfile, ci.Info.ProfileId)
			}
			gi.RUnlock()
			g.GPUInstances = append(g.GPUInstances, s)
		}
		d.RUnlock()
		slices.SortFunc(g.GPUInstances, func(a, b fakeGIState) int { return int(a.ID) - int(b.ID) })
		st.GPUs = append(st.GPUs, g)
	}
	return st
}

// writeFakeState writes the state atomically: a temporary file renamed
// over the old one.
func writeFakeState(path string, st fakeState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fake machine state: %w", err)
	}
	if err := atomicfile.Write(path, data, false); err != nil {
		return fmt.Errorf("save fake machine state: %w", err)
	}
	return nil
}

// loadState restores the state file into the mock server when it exists,
// and saves the current state when it does not.
func (f *Fake) loadState(path string) error {
	f.statePath = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return writeFakeState(path, f.snapshot())
	}
	if err != nil {
		return fmt.Errorf("read fake machine state: %w", err)
	}
	var st fakeState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("decode fake machine state %s: %w", path, err)
	}
	if st.Machine != f.name || len(st.GPUs) != len(f.server.Devices) {
		return fmt.Errorf("fake machine state %s is of machine %s with %d GPUs, not %s", path, st.Machine, len(st.GPUs), f.name)
	}
	for i, g := range st.GPUs {
		if err := restoreGPU(f.server.Devices[i].(*server.Device), g); err != nil {
			return fmt.Errorf("restore fake GPU %d from %s: %w", i, path, err)
		}
	}
	return nil
}

func restoreGPU(d *server.Device, g fakeGPUState) error {
	for gi := range d.GpuInstances {
		delete(d.GpuInstances, gi)
	}
	d.MigMode = g.MIGMode
	if ret := d.SetComputeMode(nvml.ComputeMode(g.ComputeMode)); ret != nvml.SUCCESS {
		return nvmlError("set compute mode", ret)
	}
	for _, s := range g.GPUInstances {
		info, ret := d.GetGpuInstanceProfileInfo(int(s.ProfileID))
		if ret != nvml.SUCCESS {
			return nvmlError("get GPU instance profile", ret)
		}
		h, ret := d.CreateGpuInstanceWithPlacement(&info, &nvml.GpuInstancePlacement{Start: s.Start, Size: s.Size})
		if ret != nvml.SUCCESS {
			return nvmlError("create GPU instance", ret)
		}
		gi := h.(*server.GpuInstance)
		gi.Info.Id = s.ID
		for j, ciID := range s.ComputeInstanceIDs {
			ciInfo, ret := gi.GetComputeInstanceProfileInfo(int(s.ComputeInstanceProfile[j]), nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
			if ret != nvml.SUCCESS {
				return nvmlError("get compute instance profile", ret)
			}
			ch, ret := gi.CreateComputeInstance(&ciInfo)
			if ret != nvml.SUCCESS {
				return nvmlError("create compute instance", ret)
			}
			ch.(*server.ComputeInstance).Info.Id = ciID
		}
		gi.ComputeInstanceCounter = s.NextComputeInst
	}
	d.GpuInstanceCounter = g.NextGPUInst
	return nil
}
