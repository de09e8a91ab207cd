package sharing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// Where containers of an MPS GPU find what they share with its daemon.
const (
	MPSContainerPipeDir = "/tmp/nvidia-mps"
	MPSContainerShmDir  = "/dev/shm"
)

// ErrMPSLimitsDiffer is returned when a claim joins a GPU whose MPS daemon
// enforces other limits than the claim asks for.
var ErrMPSLimitsDiffer = errors.New("the GPU's MPS daemon enforces other limits")

// MPSLimits are what a GPU's MPS control daemon enforces for every client
// (set_default_active_thread_percentage, set_default_device_pinned_mem_limit).
// A client's CUDA_MPS_* variables can only lower them, so a workload
// cannot take more than its claim asked for. Zero means no limit.
type MPSLimits struct {
	ActiveThreadPercentage int32 `json:"activeThreadPercentage,omitempty"`
	PinnedDeviceMemoryMiB  int64 `json:"pinnedDeviceMemoryMiB,omitempty"`
}

// LimitsOf are the daemon limits of a claim's MPS config; pinned memory is
// rounded up to whole MiB (the unit MPS takes).
func LimitsOf(c *v1alpha1.MPSConfig) MPSLimits {
	var l MPSLimits
	if c == nil {
		return l
	}
	if c.DefaultActiveThreadPercentage != nil {
		l.ActiveThreadPercentage = *c.DefaultActiveThreadPercentage
	}
	if q := c.DefaultPinnedDeviceMemoryLimit; q != nil && q.Sign() > 0 {
		l.PinnedDeviceMemoryMiB = (q.Value() + 1<<20 - 1) >> 20
	}
	return l
}

// Commands are the control-pipe commands that set the limits. The daemon
// sees only its GPU (CUDA_VISIBLE_DEVICES), as device 0.
func (l MPSLimits) Commands() []string {
	var cmds []string
	if l.ActiveThreadPercentage > 0 {
		cmds = append(cmds, "set_default_active_thread_percentage "+strconv.Itoa(int(l.ActiveThreadPercentage)))
	}
	if l.PinnedDeviceMemoryMiB > 0 {
		cmds = append(cmds, fmt.Sprintf("set_default_device_pinned_mem_limit 0 %dM", l.PinnedDeviceMemoryMiB))
	}
	return cmds
}

// String names the limits as the claim's config does.
func (l MPSLimits) String() string {
	var parts []string
	if l.ActiveThreadPercentage > 0 {
		parts = append(parts, fmt.Sprintf("defaultActiveThreadPercentage=%d", l.ActiveThreadPercentage))
	}
	if l.PinnedDeviceMemoryMiB > 0 {
		parts = append(parts, fmt.Sprintf("defaultPinnedDeviceMemoryLimit=%dMi", l.PinnedDeviceMemoryMiB))
	}
	if len(parts) == 0 {
		return "no limits"
	}
	return strings.Join(parts, ", ")
}

// Daemon is one GPU's MPS control daemon.
type Daemon struct {
	GPUUUID string
	// Dir is the GPU's directory on the host: pipe/, log/ and shm/ are
	// shared with the clients.
	Dir    string
	Limits MPSLimits
}

// PipeDir, LogDir and ShmDir are the daemon's directories on the host.
func (d Daemon) PipeDir() string { return filepath.Join(d.Dir, "pipe") }
func (d Daemon) LogDir() string  { return filepath.Join(d.Dir, "log") }
func (d Daemon) ShmDir() string  { return filepath.Join(d.Dir, "shm") }

// Env is the environment of the daemon and of nvidia-cuda-mps-control
// talking to it.
func (d Daemon) Env() []string {
	return []string{
		"CUDA_VISIBLE_DEVICES=" + d.GPUUUID,
		"CUDA_MPS_PIPE_DIRECTORY=" + d.PipeDir(),
		"CUDA_MPS_LOG_DIRECTORY=" + d.LogDir(),
	}
}

// Daemons runs MPS control daemons, one per GPU.
type Daemons interface {
	// Start starts the GPU's daemon with its limits set and returns once
	// it answers on its pipe.
	Start(ctx context.Context, d Daemon) error
	// Stop stops the GPU's daemon and returns once it is gone; stopping
	// one that does not run is not an error where that can be told.
	Stop(ctx context.Context, d Daemon) error
	// List names the GPUs whose daemon runs or is being started, beyond
	// those with a directory (a pod whose directory was lost).
	List(ctx context.Context) ([]string, error)
}

// limitsFile records, in the GPU's directory, the limits its daemon was
// started with, for the claims that join it.
const limitsFile = "limits.json"

func (m *Manager) daemon(gpuUUID string, l MPSLimits) Daemon {
	return Daemon{GPUUUID: gpuUUID, Dir: filepath.Join(m.opts.MPSDir, gpuUUID), Limits: l}
}

func (m *Manager) shareMPS(ctx context.Context, gpuUUID string, c *v1alpha1.MPSConfig, first bool) (Edits, error) {
	d := m.daemon(gpuUUID, LimitsOf(c))
	if first {
		if err := m.startMPS(ctx, d); err != nil {
			return Edits{}, err
		}
	} else if running, err := readLimits(d.Dir); err != nil {
		return Edits{}, err
	} else if running != d.Limits {
		return Edits{}, fmt.Errorf("%w: GPU %s's daemon enforces %s for every client and this claim asks for %s; claims sharing one GPU through MPS must ask for the same sharing.mps limits",
			ErrMPSLimitsDiffer, gpuUUID, running, d.Limits)
	}
	e := Edits{
		Env: []string{"CUDA_MPS_PIPE_DIRECTORY=" + MPSContainerPipeDir},
		Mounts: []Mount{
			{HostPath: d.PipeDir(), ContainerPath: MPSContainerPipeDir},
			{HostPath: d.ShmDir(), ContainerPath: MPSContainerShmDir},
		},
	}
	// The daemon enforces the limits; the client variables say the same,
	// for tools that read them.
	if l := d.Limits; l.ActiveThreadPercentage > 0 {
		e.Env = append(e.Env, fmt.Sprintf("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=%d", l.ActiveThreadPercentage))
	}
	if l := d.Limits; l.PinnedDeviceMemoryMiB > 0 {
		e.Env = append(e.Env, fmt.Sprintf("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=%dM", l.PinnedDeviceMemoryMiB))
	}
	return e, nil
}

// startMPS makes the GPU's directory (which from then on says a daemon may
// run) and starts the daemon; on failure it stops what may have started
// and removes the directory.
func (m *Manager) startMPS(ctx context.Context, d Daemon) error {
	for _, dir := range []string{d.PipeDir(), d.LogDir(), d.ShmDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("MPS directory: %w", err)
		}
	}
	// Clients reach the shared directories as whatever user they run as.
	if err := os.Chmod(d.ShmDir(), 0o1777); err != nil {
		return fmt.Errorf("MPS shm directory: %w", err)
	}
	if err := writeLimits(d.Dir, d.Limits); err != nil {
		return err
	}
	if err := m.opts.Daemons.Start(ctx, d); err != nil {
		// No daemon: no directory, which would claim one.
		return errors.Join(fmt.Errorf("start MPS daemon of %s: %w", d.GPUUUID, err),
			m.opts.Daemons.Stop(context.WithoutCancel(ctx), d), m.ForgetMPS(d.GPUUUID))
	}
	return nil
}

// StopMPS stops the GPU's MPS control daemon and removes its directory, so
// that a directory under MPSDir always means a daemon this plugin started.
func (m *Manager) StopMPS(ctx context.Context, gpuUUID string) error {
	if err := m.opts.Daemons.Stop(ctx, m.daemon(gpuUUID, MPSLimits{})); err != nil {
		return fmt.Errorf("stop MPS daemon of %s: %w", gpuUUID, err)
	}
	return m.ForgetMPS(gpuUUID)
}

// ForgetMPS removes the GPU's MPS directory without asking a daemon to
// quit: for a daemon that is not running (a quit that failed because none
// answers).
func (m *Manager) ForgetMPS(gpuUUID string) error {
	if err := os.RemoveAll(filepath.Join(m.opts.MPSDir, gpuUUID)); err != nil {
		return fmt.Errorf("remove MPS directory of %s: %w", gpuUUID, err)
	}
	return nil
}

// MPSDaemons lists the GPUs whose MPS daemon this plugin started and has
// not stopped: their directory under MPSDir exists, or their daemon (pod)
// does.
func (m *Manager) MPSDaemons(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(m.opts.MPSDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list MPS daemons: %w", err)
	}
	var gpus []string
	for _, e := range entries {
		if e.IsDir() {
			gpus = append(gpus, e.Name())
		}
	}
	running, err := m.opts.Daemons.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list MPS daemons: %w", err)
	}
	for _, g := range running {
		if !slices.Contains(gpus, g) {
			gpus = append(gpus, g)
		}
	}
	return gpus, nil
}

func writeLimits(dir string, l MPSLimits) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode MPS limits: %w", err)
	}
	tmp := filepath.Join(dir, limitsFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("record MPS limits: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, limitsFile)); err != nil {
		return fmt.Errorf("record MPS limits: %w", err)
	}
	return nil
}

// readLimits reads the limits a GPU's daemon was started with; a daemon
// started before they were recorded has none.
func readLimits(dir string) (MPSLimits, error) {
	var l MPSLimits
	data, err := os.ReadFile(filepath.Join(dir, limitsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("read MPS limits: %w", err)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("read MPS limits %s: %w", filepath.Join(dir, limitsFile), err)
	}
	return l, nil
}
