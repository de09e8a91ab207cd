package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// StatusFile is the file in the plugin's state directory that holds the
// last Status it recorded: it rewrites it on every health event and
// every change of a GPU's taints, and `tierra inspect --state-dir` reads it.
const StatusFile = "health.json"

// StatusVersion is the version of the Status format.
const StatusVersion = "health.tierra.dev/v1"

// ErrNoStatus means the state directory holds no health status: no plugin
// with a health watch has run there.
var ErrNoStatus = errors.New("no health status recorded")

// ErrCorruptStatus means the state directory's health status cannot be
// decoded or does not hold together; ErrStatusVersion that it is of a
// version this plugin does not know. A starting plugin moves either aside
// (QuarantineStatus) rather than restore from it.
var (
	ErrCorruptStatus = errors.New("corrupt health status")
	ErrStatusVersion = errors.New("unknown health status version")
)

// State is a GPU's health as the tracker sees it.
type State string

const (
	// StateHealthy: no taint, answers NVML.
	StateHealthy State = "Healthy"
	// StateTainted: answers NVML, some of its devices carry health taints
	// until the quiet period has passed.
	StateTainted State = "Tainted"
	// StateLost: does not answer NVML; left out of the slices until it
	// does, then tainted for the quiet period.
	StateLost State = "Lost"
)

// Status is the health of a node's GPUs at one time: what the tracker
// knows of every GPU that had an event.
type Status struct {
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	// BootID is the host's boot id when the status was recorded (empty in
	// records of plugins that did not know it): a restart in the same boot
	// restores the faults, a reboot (which resets the GPUs) does not.
	BootID string      `json:"bootID,omitempty"`
	GPUs   []GPUStatus `json:"gpus"`
}

// GPUStatus is one GPU's health, its taints and its recent events.
type GPUStatus struct {
	UUID  string `json:"uuid"`
	State State  `json:"state"`
	// Faults are the taint sources on the GPU, each on the whole GPU or
	// on one MIG instance's memory slices.
	Faults []Fault `json:"faults,omitempty"`
	// QuietPeriod is the GPU's current, damped quiet period; ClearsAt is
	// when its faults clear if it keeps answering and stays quiet (nil
	// while it does not answer or has no fault).
	QuietPeriod *metav1.Duration `json:"quietPeriod,omitempty"`
	ClearsAt    *time.Time       `json:"clearsAt,omitempty"`
	// FlapHistory are the times of the tainting events that damp the next
	// quiet period (those within the flap window of the last one).
	FlapHistory []time.Time `json:"flapHistory,omitempty"`
	// Events are the GPU's recent events, oldest first.
	Events []Record `json:"events,omitempty"`
}

// Fault is one taint source of a GPU.
type Fault struct {
	Key    string                        `json:"key"`
	Value  string                        `json:"value"`
	Effect resourceapi.DeviceTaintEffect `json:"effect"`
	// Placement is the MIG instance's memory slices; nil is the whole GPU.
	Placement *inventory.MIGPlacement `json:"placement,omitempty"`
	Since     time.Time               `json:"since"`
}

// String is key=value:effect, with the MIG slices it is scoped to.
func (f Fault) String() string {
	s := f.Key + "=" + f.Value + ":" + string(f.Effect)
	if f.Placement != nil {
		s += " (MIG slices " + f.Placement.String() + ")"
	}
	return s
}

// Status is a snapshot of every GPU the tracker has seen an event or a
// probe of, sorted by UUID.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{Version: StatusVersion, Time: t.clock.Now(), GPUs: make([]GPUStatus, 0, len(t.gpus))}
	for uuid, g := range t.gpus {
		gs := GPUStatus{UUID: uuid, State: StateHealthy, Events: slices.Clone(g.records), FlapHistory: slices.Clone(g.history)}
		for _, f := range g.faults {
			gs.Faults = append(gs.Faults, Fault{Key: f.key, Value: f.value, Effect: f.effect, Placement: f.placement, Since: f.since})
		}
		if len(g.faults) > 0 {
			gs.State = StateTainted
			gs.QuietPeriod = &metav1.Duration{Duration: g.quiet}
		}
		if at, ok := g.clearAt(); ok {
			gs.ClearsAt = &at
		}
		if g.lost {
			gs.State = StateLost
		}
		s.GPUs = append(s.GPUs, gs)
	}
	slices.SortFunc(s.GPUs, func(a, b GPUStatus) int { return strings.Compare(a.UUID, b.UUID) })
	return s
}

// WriteStatus replaces dir's StatusFile with s atomically: a reader sees
// the previous status or this one, never a part.
func WriteStatus(dir string, s Status) (err error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode health status: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, StatusFile), append(data, '\n'), true); err != nil {
		return fmt.Errorf("write health status: %w", err)
	}
	return nil
}

// ReadStatus reads dir's StatusFile; it fails with ErrNoStatus when there
// is none, ErrStatusVersion on a version it does not know and
// ErrCorruptStatus on one it cannot decode or that does not hold together.
func ReadStatus(dir string) (Status, error) {
	path := filepath.Join(dir, StatusFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Status{}, fmt.Errorf("%s: %w", path, ErrNoStatus)
	}
	if err != nil {
		return Status{}, fmt.Errorf("read health status: %w", err)
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return Status{}, fmt.Errorf("%w: decode health status %s: %w", ErrCorruptStatus, path, err)
	}
	if s.Version != StatusVersion {
		return Status{}, fmt.Errorf("%w: health status %s has version %q, want %q", ErrStatusVersion, path, s.Version, StatusVersion)
	}
	if err := s.validate(); err != nil {
		return Status{}, fmt.Errorf("%w: health status %s: %w", ErrCorruptStatus, path, err)
	}
	return s, nil
}
