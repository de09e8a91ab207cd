package health

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// QuarantineDir is the directory, in the state directory, that a status the
// plugin cannot restore from is moved into.
const QuarantineDir = "quarantine"

// RestoreOptions say what the node is like when a starting plugin restores
// the Status its predecessor recorded.
type RestoreOptions struct {
	// Present are the UUIDs of the GPUs discovery found: they answer NVML.
	Present []string
	// Rebooted says the status was recorded in an earlier boot. A reboot
	// resets every GPU, which is the recovery NVIDIA prescribes for the
	// fatal XIDs, so the recorded faults are dropped; the flap history is
	// kept, so a GPU that faults again soon after still stays tainted
	// longer.
	Rebooted bool
}

// Restored says what Restore made of a Status, each list sorted.
type Restored struct {
	// Tainted are the GPUs whose faults were restored.
	Tainted []string
	// Lost are the GPUs restored as not answering: faulty or lost in the
	// record and not found by discovery now.
	Lost []string
	// Reset are the GPUs whose recorded faults a reboot dropped.
	Reset []string
}

// Restore puts the state a Status recorded back into the tracker, on the
// tracker's clock: each GPU's faults, damped quiet period, flap history and
// recent events, so that it publishes the same taints and clears them at
// the recorded time (Expire, NextExpiry) without a new event. A GPU with
// faults that discovery no longer finds stays tainted as a lost GPU does,
// until it answers again and a quiet period passes; one the record says was
// lost and that answers now starts its quiet period from now, as
// SetAnswering does. The GPUs in s replace what the tracker knew of them.
func (t *Tracker) Restore(s Status, opts RestoreOptions) Restored {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	quiet, maxQuiet, _ := t.policy.Timing()
	var out Restored
	for _, gs := range s.GPUs {
		g := &gpuState{records: slices.Clone(gs.Events), history: slices.Clone(gs.FlapHistory), quiet: min(quiet, maxQuiet)}
		if len(g.records) > keepRecords {
			g.records = slices.Delete(g.records, 0, len(g.records)-keepRecords)
		}
		if gs.FlapHistory == nil {
			g.history = taintingTimes(gs.Events)
		}
		if gs.QuietPeriod != nil {
			g.quiet = gs.QuietPeriod.Duration
		}
		t.gpus[gs.UUID] = g
		faulty := len(gs.Faults) > 0 || gs.State == StateLost
		if opts.Rebooted {
			if faulty {
				out.Reset = append(out.Reset, gs.UUID)
			}
			continue
		}
		for _, f := range gs.Faults {
			g.faults = append(g.faults, &fault{key: f.Key, value: f.Value, effect: f.Effect, placement: f.Placement, since: f.Since})
			g.last = later(g.last, f.Since)
		}
		for _, at := range g.history {
			g.last = later(g.last, at)
		}
		if gs.ClearsAt != nil {
			g.last = gs.ClearsAt.Add(-g.quiet)
		}
		present := slices.Contains(opts.Present, gs.UUID)
		switch {
		case faulty && !present:
			g.lost = true
			out.Lost = append(out.Lost, gs.UUID)
		case gs.State == StateLost:
			g.answered = now
		}
		if len(g.faults) > 0 {
			out.Tainted = append(out.Tainted, gs.UUID)
		}
	}
	slices.Sort(out.Tainted)
	slices.Sort(out.Lost)
	slices.Sort(out.Reset)
	return out
}

// taintingTimes is the flap history of a record without one (written
// before it was recorded): the times of its tainting events.
func taintingTimes(events []Record) []time.Time {
	var out []time.Time
	for _, r := range events {
		if r.Action != v1alpha1.HealthIgnore {
			out = append(out, r.Time)
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// validate checks that a decoded Status holds together: every GPU named
// once, in a known state, its faults with a key and a taint effect, its
// quiet period not negative.
func (s Status) validate() error {
	seen := map[string]bool{}
	for i, g := range s.GPUs {
		if g.UUID == "" {
			return fmt.Errorf("gpus[%d]: no uuid", i)
		}
		if seen[g.UUID] {
			return fmt.Errorf("gpus[%d]: GPU %s recorded twice", i, g.UUID)
		}
		seen[g.UUID] = true
		switch g.State {
		case StateHealthy, StateTainted, StateLost:
		default:
			return fmt.Errorf("gpus[%d] (%s): unknown state %q", i, g.UUID, g.State)
		}
		if g.QuietPeriod != nil && g.QuietPeriod.Duration < 0 {
			return fmt.Errorf("gpus[%d] (%s): negative quiet period %s", i, g.UUID, g.QuietPeriod.Duration)
		}
		for j, f := range g.Faults {
			if f.Key == "" {
				return fmt.Errorf("gpus[%d] (%s).faults[%d]: no key", i, g.UUID, j)
			}
			if f.Effect != resourceapi.DeviceTaintEffectNoSchedule && f.Effect != resourceapi.DeviceTaintEffectNoExecute {
				return fmt.Errorf("gpus[%d] (%s).faults[%d]: unknown effect %q", i, g.UUID, j, f.Effect)
			}
		}
	}
	return nil
}

// LoadStatus reads dir's StatusFile for a starting plugin. It removes the
// leftovers of writes a crash interrupted (the file they were replacing is
// intact). A status that is corrupt or of another version is moved into
// dir/QuarantineDir, so that it is neither restored from, nor overwritten,
// nor lost: quarantined is where it went, and err says why
// (ErrCorruptStatus, ErrStatusVersion). With no status it fails with
// ErrNoStatus.
func LoadStatus(dir string, now time.Time) (s Status, quarantined string, err error) {
	leftovers, _ := filepath.Glob(filepath.Join(dir, "."+StatusFile+"-*"))
	for _, l := range leftovers {
		_ = os.Remove(l)
	}
	s, err = ReadStatus(dir)
	if !errors.Is(err, ErrCorruptStatus) && !errors.Is(err, ErrStatusVersion) {
		return s, "", err
	}
	qdir := filepath.Join(dir, QuarantineDir)
	dst := filepath.Join(qdir, StatusFile+"."+now.UTC().Format("20060102T150405.000000000Z"))
	qerr := os.MkdirAll(qdir, 0o700)
	if qerr == nil {
		qerr = os.Rename(filepath.Join(dir, StatusFile), dst)
	}
	if qerr != nil {
		return Status{}, "", errors.Join(err, fmt.Errorf("move aside health status: %w", qerr))
	}
	return Status{}, dst, err
}
