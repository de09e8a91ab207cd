package usage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Defaults of TrackerOptions.
const (
	DefaultIdleThreshold = 0.05
	DefaultIdleWindow    = 2 * time.Hour
	DefaultHeadroom      = 0.2
)

// TrackerOptions configure NewTracker.
type TrackerOptions struct {
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// IdleThreshold is the SM ratio (0-1) below which a device counts as
	// idle; 0 means DefaultIdleThreshold.
	IdleThreshold float64
	// IdleWindow is how long every device of a claim must stay idle for
	// the claim to be reported idle; 0 means DefaultIdleWindow. It is also
	// how long a claim is watched before a smaller size is suggested.
	IdleWindow time.Duration
	// Sizes are the devices a claim could be moved to, with their prices
	// (from the price book and the node's MIG profiles).
	Sizes []Size
	// Headroom is the margin a smaller size must leave over the peaks
	// (0.2: 20 % more memory and SMs than the peak); 0 means
	// DefaultHeadroom, negative means none.
	Headroom float64
}

// Tracker follows each prepared claim's use over time. It is a pure state
// machine fed by Observe; safe for concurrent use.
type Tracker struct {
	opts TrackerOptions

	mu     sync.Mutex
	claims map[string]*claimState
}

type claimState struct {
	claim     Claim
	firstSeen time.Time
	lastBusy  time.Time // zero: never busy
	idle      bool      // as of the last Observe
	oversized bool
	peak      peaks
}

// peaks are the highest per-device use seen: memory and SM ratio of the
// busiest device, and whether every SM sample was known.
type peaks struct {
	memoryBytes uint64
	smRatio     float64
	smUnknown   bool
}

// NewTracker validates the options.
func NewTracker(opts TrackerOptions) (*Tracker, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.IdleThreshold == 0 {
		opts.IdleThreshold = DefaultIdleThreshold
	}
	if opts.IdleWindow == 0 {
		opts.IdleWindow = DefaultIdleWindow
	}
	switch {
	case opts.Headroom == 0:
		opts.Headroom = DefaultHeadroom
	case opts.Headroom < 0:
		opts.Headroom = 0
	}
	if opts.IdleThreshold < 0 || opts.IdleThreshold > 1 {
		return nil, fmt.Errorf("idle threshold %g: want a ratio in (0, 1]", opts.IdleThreshold)
	}
	if opts.IdleWindow < 0 {
		return nil, fmt.Errorf("idle window %s: want a positive duration", opts.IdleWindow)
	}
	for _, s := range opts.Sizes {
		if err := s.validate(); err != nil {
			return nil, err
		}
	}
	return &Tracker{opts: opts, claims: map[string]*claimState{}}, nil
}

// Changes are the claims whose state changed in one Observe, for events.
type Changes struct {
	BecameIdle      []ClaimReport
	BecameOversized []ClaimReport
}

// Observe records one reading: the claims prepared now and their pods'
// use. A claim no longer listed is forgotten; a device of a claim without
// processes counts as unused.
func (t *Tracker) Observe(claims []Claim, a Attribution) Changes {
	now := t.opts.Clock.Now()
	use := map[string][]PodGPUUse{}
	for _, u := range a.Pods {
		use[u.Claim.UID] = append(use[u.Claim.UID], u)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	var ch Changes
	for _, c := range claims {
		seen[c.UID] = true
		st := t.claims[c.UID]
		if st == nil {
			st = &claimState{firstSeen: now}
			t.claims[c.UID] = st
		}
		st.claim = c
		if t.busy(use[c.UID]) {
			st.lastBusy = now
		}
		st.peak = st.peak.with(use[c.UID])
		r := t.report(st, now)
		if r.Idle && !st.idle {
			ch.BecameIdle = append(ch.BecameIdle, r)
		}
		if r.Suggestion != nil && !st.oversized {
			ch.BecameOversized = append(ch.BecameOversized, r)
		}
		st.idle, st.oversized = r.Idle, r.Suggestion != nil
	}
	for uid := range t.claims {
		if !seen[uid] {
			delete(t.claims, uid)
		}
	}
	return ch
}

// busy: some device is at or above the threshold, or runs processes whose
// SM use NVML cannot tell (MIG).
func (t *Tracker) busy(use []PodGPUUse) bool {
	perDevice := map[GPURef]float64{}
	for _, u := range use {
		if !u.SMKnown && u.Processes > 0 {
			return true
		}
		perDevice[u.GPU] += u.SMRatio
	}
	for _, sm := range perDevice {
		if sm >= t.opts.IdleThreshold {
			return true
		}
	}
	return false
}

// with folds one reading's use into the peaks, per device (several pods
// of one claim on one device add up).
func (p peaks) with(use []PodGPUUse) peaks {
	mem := map[GPURef]uint64{}
	sm := map[GPURef]float64{}
	for _, u := range use {
		mem[u.GPU] += u.MemoryBytes
		sm[u.GPU] = min(1, sm[u.GPU]+u.SMRatio)
		if !u.SMKnown && u.Processes > 0 {
			p.smUnknown = true
		}
	}
	for ref := range mem {
		p.memoryBytes = max(p.memoryBytes, mem[ref])
		p.smRatio = max(p.smRatio, sm[ref])
	}
	return p
}

// ClaimReport is what the tracker knows of one claim now.
type ClaimReport struct {
	Claim Claim
	// Idle: every device stayed below the threshold for the idle window;
	// IdleFor is how long they have (since the claim was first seen, if it
	// was never busy).
	Idle    bool
	IdleFor time.Duration
	// Observed is how long the claim has been watched.
	Observed time.Duration
	// PeakMemoryBytes and PeakSMRatio are the busiest device's peaks;
	// PeakSMKnown is false when NVML could not tell some device's SM use.
	PeakMemoryBytes uint64
	PeakSMRatio     float64
	PeakSMKnown     bool
	// Suggestion is a cheaper size the peaks fit, once the claim has been
	// watched for the idle window; nil if none.
	Suggestion *Suggestion
}

// Report lists every tracked claim by namespace and name.
func (t *Tracker) Report() []ClaimReport {
	now := t.opts.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ClaimReport, 0, len(t.claims))
	for _, st := range t.claims {
		out = append(out, t.report(st, now))
	}
	slices.SortFunc(out, func(a, b ClaimReport) int {
		return cmp.Or(cmp.Compare(a.Claim.Namespace, b.Claim.Namespace), cmp.Compare(a.Claim.Name, b.Claim.Name))
	})
	return out
}

func (t *Tracker) report(st *claimState, now time.Time) ClaimReport {
	since := st.firstSeen
	if st.lastBusy.After(since) {
		since = st.lastBusy
	}
	r := ClaimReport{
		Claim: st.claim, IdleFor: now.Sub(since), Observed: now.Sub(st.firstSeen),
		PeakMemoryBytes: st.peak.memoryBytes, PeakSMRatio: st.peak.smRatio, PeakSMKnown: !st.peak.smUnknown,
	}
	r.Idle = r.IdleFor >= t.opts.IdleWindow
	if r.Observed >= t.opts.IdleWindow && r.PeakSMKnown {
		r.Suggestion = suggest(st.claim, st.peak, t.opts.Sizes, t.opts.Headroom)
	}
	return r
}

// IdleMessage is the Warning Event text for an idle claim's pods: "GPU
// idle for 2h; the claim holds 4 H200s".
func IdleMessage(r ClaimReport) string {
	return fmt.Sprintf("GPU idle for %s; the claim %s holds %s", roundDuration(r.IdleFor), r.Claim.Name, describeDevices(r.Claim.Devices))
}

// roundDuration prints whole hours as "2h", otherwise minutes.
func roundDuration(d time.Duration) string {
	if d >= time.Hour && d%time.Hour < time.Minute {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// describeDevices says what a claim holds: "4 H200s", "1 H200 1g.18gb".
func describeDevices(devs []Device) string {
	counts := map[string]int{}
	var order []string
	for _, d := range devs {
		name := strings.TrimPrefix(d.Product, "NVIDIA ")
		if name == "" {
			name = "GPU"
		}
		if d.Profile != "" {
			name += " " + d.Profile
		}
		if counts[name] == 0 {
			order = append(order, name)
		}
		counts[name]++
	}
	parts := make([]string, 0, len(order))
	for _, name := range order {
		n := counts[name]
		if n > 1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	if len(parts) == 0 {
		return "no devices"
	}
	return strings.Join(parts, " and ")
}
