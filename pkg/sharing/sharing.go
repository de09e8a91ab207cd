// Package sharing sets up the soft-sharing strategies of a GPU: the
// time-slice of time-sliced GPUs (nvidia-smi compute-policy) and one MPS
// control daemon per GPU (nvidia-cuda-mps-control) that enforces the MPS
// limits for every client. A daemon runs in its own pod (PodDaemons, which
// outlives plugin restarts and rollouts, supervised by Supervise) or as a
// host process (HostDaemons). Processes run through a Runner, so tests
// record the commands instead of running them.
package sharing

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// Cmd is one process to run to completion.
type Cmd struct {
	Argv  []string
	Env   []string
	Stdin string
}

// Runner runs commands on the host.
type Runner interface {
	Run(ctx context.Context, cmd Cmd) error
}

// Mount is a bind mount a sharing strategy adds to the container.
type Mount struct {
	HostPath, ContainerPath string
}

// Edits are what a container of a soft-shared GPU needs.
type Edits struct {
	Env    []string
	Mounts []Mount
}

// Default commands of Options.
const (
	DefaultMPSControlCommand = "nvidia-cuda-mps-control"
	DefaultNvidiaSMICommand  = "nvidia-smi"
)

// Options configure a Manager.
type Options struct {
	Runner Runner
	// MPSDir holds one directory per GPU for its MPS daemon's pipes and logs.
	MPSDir string
	// MPSControlCommand starts (-d) and stops (quit on stdin) a GPU's MPS
	// control daemon; "" means DefaultMPSControlCommand.
	MPSControlCommand string
	// NvidiaSMICommand sets time-slices (compute-policy); "" means
	// DefaultNvidiaSMICommand.
	NvidiaSMICommand string
	// Daemons runs the MPS control daemons; nil runs them as host
	// processes through Runner (HostDaemons). PodDaemons runs each in its
	// own pod, which outlives the plugin.
	Daemons Daemons
}

// Manager applies soft-sharing strategies.
type Manager struct{ opts Options }

// New validates the options.
func New(opts Options) (*Manager, error) {
	if opts.Runner == nil || opts.MPSDir == "" {
		return nil, errors.New("sharing: Runner and MPSDir are required")
	}
	if opts.MPSControlCommand == "" {
		opts.MPSControlCommand = DefaultMPSControlCommand
	}
	if opts.NvidiaSMICommand == "" {
		opts.NvidiaSMICommand = DefaultNvidiaSMICommand
	}
	if opts.Daemons == nil {
		opts.Daemons = &HostDaemons{Runner: opts.Runner, ControlCommand: opts.MPSControlCommand}
	}
	return &Manager{opts: opts}, nil
}

// timeSliceIDs are nvidia-smi's --set-timeslice values.
var timeSliceIDs = map[v1alpha1.TimeSliceInterval]int{
	v1alpha1.TimeSliceDefault: 0, v1alpha1.TimeSliceShort: 1, v1alpha1.TimeSliceMedium: 2, v1alpha1.TimeSliceLong: 3,
}

// SetTimeSlice sets a GPU's time-slice with nvidia-smi compute-policy (NVML
// has no call for it).
func (m *Manager) SetTimeSlice(ctx context.Context, gpuUUID string, slice v1alpha1.TimeSliceInterval) error {
	id, ok := timeSliceIDs[slice]
	if !ok {
		return fmt.Errorf("time-slice %q: want Default, Short, Medium or Long", slice)
	}
	cmd := Cmd{Argv: []string{m.opts.NvidiaSMICommand, "compute-policy", "-i", gpuUUID, "--set-timeslice=" + strconv.Itoa(id)}}
	if err := m.opts.Runner.Run(ctx, cmd); err != nil {
		return fmt.Errorf("set time-slice %s on %s: %w", slice, gpuUUID, err)
	}
	return nil
}

// Share sets up the strategy for one more claim on the GPU; first is true
// when no other claim shares the GPU now (the daemon must be started, the
// time-slice set).
func (m *Manager) Share(ctx context.Context, gpuUUID string, s *v1alpha1.GpuSharing, first bool) (Edits, error) {
	switch s.Strategy {
	case v1alpha1.SharingTimeSlicing:
		if first && s.TimeSlicing != nil && s.TimeSlicing.Interval != v1alpha1.TimeSliceDefault {
			return Edits{}, m.SetTimeSlice(ctx, gpuUUID, s.TimeSlicing.Interval)
		}
		return Edits{}, nil
	case v1alpha1.SharingMPS:
		return m.shareMPS(ctx, gpuUUID, s.MPS, first)
	default:
		return Edits{}, fmt.Errorf("sharing strategy %q is not soft sharing", s.Strategy)
	}
}

// Unshare undoes Share for one claim; last is true when no other claim
// shares the GPU any more (the daemon stops, the time-slice is reset).
func (m *Manager) Unshare(ctx context.Context, gpuUUID string, strategy v1alpha1.SharingStrategy, last bool) error {
	if !last {
		return nil
	}
	switch strategy {
	case v1alpha1.SharingTimeSlicing:
		return m.SetTimeSlice(ctx, gpuUUID, v1alpha1.TimeSliceDefault)
	case v1alpha1.SharingMPS:
		return m.StopMPS(ctx, gpuUUID)
	}
	return nil
}
