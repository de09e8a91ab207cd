package health

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Taint keys: what happened, with the detail in the value.
const (
	// XIDTaintKey's value is the XID code, e.g. gpu.tierra.dev/xid=79.
	XIDTaintKey = v1alpha1.DriverName + "/xid"
	// ECCTaintKey's value is DoubleBit.
	ECCTaintKey = v1alpha1.DriverName + "/ecc"
	// LostTaintKey's value is Lost: the GPU stopped answering NVML.
	LostTaintKey = v1alpha1.DriverName + "/gpu-lost"
)

// Kind is the kind of a health event.
type Kind string

const (
	KindXID          Kind = "XID"
	KindDoubleBitECC Kind = "DoubleBitECC"
	KindGPULost      Kind = "GPULost"
)

// Event is one health event of one GPU.
type Event struct {
	GPU  string `json:"gpu"` // UUID
	Kind Kind   `json:"kind"`
	XID  uint64 `json:"xid,omitempty"`
	// Placement scopes the event to the memory slices of a MIG instance;
	// nil concerns the whole GPU.
	Placement *inventory.MIGPlacement `json:"placement,omitempty"`
}

// String names the event: "XID 79", "DoubleBitECC", "GPULost", with the
// MIG slices it is scoped to.
func (e Event) String() string {
	s := string(e.Kind)
	if e.Kind == KindXID {
		s = "XID " + strconv.FormatUint(e.XID, 10)
	}
	if e.Placement != nil {
		s += " (MIG slices " + e.Placement.String() + ")"
	}
	return s
}

// Record is an observed event with its classification, kept per GPU.
type Record struct {
	Event
	Time   time.Time             `json:"time"`
	Action v1alpha1.HealthAction `json:"action"`
}

// keepRecords is how many recent events a GPU keeps.
const keepRecords = 16

// fault is one taint source on a GPU: a key on a scope.
type fault struct {
	key, value string
	effect     resourceapi.DeviceTaintEffect
	placement  *inventory.MIGPlacement
	since      time.Time
}

type gpuState struct {
	faults []*fault
	// lost: the GPU does not answer NVML; answered is when it last came
	// back.
	lost     bool
	answered time.Time
	// last is the last tainting event, history the tainting events within
	// the flap window, quiet the damped quiet period they give.
	last    time.Time
	history []time.Time
	quiet   time.Duration
	records []Record
}

// Tracker is the health state of a node's GPUs. It is safe for concurrent
// use.
type Tracker struct {
	clock clock.PassiveClock

	mu     sync.Mutex
	policy *v1alpha1.HealthPolicy
	gpus   map[string]*gpuState
}

// NewTracker starts with every GPU healthy; policy may be nil (defaults).
func NewTracker(clk clock.PassiveClock, policy *v1alpha1.HealthPolicy) *Tracker {
	return &Tracker{clock: clk, policy: policy, gpus: map[string]*gpuState{}}
}

// SetPolicy changes the classification and timing of events to come.
func (t *Tracker) SetPolicy(policy *v1alpha1.HealthPolicy) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.policy = policy
}

func (t *Tracker) gpu(uuid string) *gpuState {
	g, ok := t.gpus[uuid]
	if !ok {
		g = &gpuState{}
		t.gpus[uuid] = g
	}
	return g
}

// Classify is the policy's action for ev.
func Classify(policy *v1alpha1.HealthPolicy, ev Event) v1alpha1.HealthAction {
	switch ev.Kind {
	case KindXID:
		return policy.XIDAction(ev.XID)
	case KindDoubleBitECC:
		return policy.DoubleBitECCAction()
	default:
		return policy.GPULostAction()
	}
}

// Observe records ev and returns its action; changed is true when the
// GPU's taints changed (a new fault, or a stronger effect on one). A lost
// GPU counts as not answering until SetAnswering says otherwise.
func (t *Tracker) Observe(ev Event) (action v1alpha1.HealthAction, changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	action = Classify(t.policy, ev)
	g := t.gpu(ev.GPU)
	g.records = append(g.records, Record{Event: ev, Time: now, Action: action})
	if len(g.records) > keepRecords {
		g.records = slices.Delete(g.records, 0, len(g.records)-keepRecords)
	}
	if ev.Kind == KindGPULost {
		g.lost = true
	}
	if action == v1alpha1.HealthIgnore {
		return action, false
	}
	t.damp(g, now)
	return action, g.addFault(ev, effectOf(action), now)
}

// damp counts a tainting event at now and sets the GPU's quiet period:
// the policy's, doubled for each earlier tainting event within the flap
// window, up to the cap.
func (t *Tracker) damp(g *gpuState, now time.Time) {
	quiet, maxQuiet, window := t.policy.Timing()
	g.history = slices.DeleteFunc(g.history, func(at time.Time) bool { return now.Sub(at) >= window })
	g.history = append(g.history, now)
	if len(g.history) > maxHistory {
		g.history = slices.Delete(g.history, 0, len(g.history)-maxHistory)
	}
	g.last = now
	g.quiet = min(quiet, maxQuiet)
	for i := 1; i < len(g.history) && g.quiet < maxQuiet; i++ {
		g.quiet = min(2*g.quiet, maxQuiet)
	}
}

// maxHistory bounds the damping history: 2^63 exceeds any cap long before.
const maxHistory = 64

func (g *gpuState) addFault(ev Event, effect resourceapi.DeviceTaintEffect, now time.Time) bool {
	key, value := taintOf(ev)
	for _, f := range g.faults {
		if f.key == key && samePlacement(f.placement, ev.Placement) {
			changed := f.value != value || (effect == resourceapi.DeviceTaintEffectNoExecute && f.effect != effect)
			f.value = value
			if effect == resourceapi.DeviceTaintEffectNoExecute {
				f.effect = effect
			}
			return changed
		}
	}
	g.faults = append(g.faults, &fault{key: key, value: value, effect: effect, placement: ev.Placement, since: now})
	return true
}

func taintOf(ev Event) (key, value string) {
	switch ev.Kind {
	case KindXID:
		return XIDTaintKey, strconv.FormatUint(ev.XID, 10)
	case KindDoubleBitECC:
		return ECCTaintKey, "DoubleBit"
	default:
		return LostTaintKey, "Lost"
	}
}

func effectOf(a v1alpha1.HealthAction) resourceapi.DeviceTaintEffect {
	if a == v1alpha1.HealthNoExecute {
		return resourceapi.DeviceTaintEffectNoExecute
	}
	return resourceapi.DeviceTaintEffectNoSchedule
}

func samePlacement(a, b *inventory.MIGPlacement) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// SetAnswering says whether the GPU answers NVML now. A GPU that answers
// again after it did not starts its quiet period over from now; back is
// true then.
func (t *Tracker) SetAnswering(uuid string, answering bool) (back bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.gpus[uuid]
	switch {
	case !answering:
		t.gpu(uuid).lost = true
	case ok && g.lost:
		g.lost, g.answered = false, t.clock.Now()
		return true
	}
	return false
}

// Faulty lists the GPUs that have taints or do not answer: the ones to
// probe.
func (t *Tracker) Faulty() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for uuid, g := range t.gpus {
		if len(g.faults) > 0 || g.lost {
			out = append(out, uuid)
		}
	}
	slices.Sort(out)
	return out
}

// clearAt is when the GPU's faults clear, if it keeps answering; ok is
// false while it does not answer or has no faults.
func (g *gpuState) clearAt() (time.Time, bool) {
	if g.lost || len(g.faults) == 0 {
		return time.Time{}, false
	}
	from := g.last
	if g.answered.After(from) {
		from = g.answered
	}
	return from.Add(g.quiet), true
}

// Expire clears the faults of every GPU whose quiet period has passed and
// returns those GPUs, sorted.
func (t *Tracker) Expire() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	var cleared []string
	for uuid, g := range t.gpus {
		if at, ok := g.clearAt(); ok && !now.Before(at) {
			g.faults = nil
			cleared = append(cleared, uuid)
		}
	}
	slices.Sort(cleared)
	return cleared
}

// NextExpiry is the earliest time Expire would clear a GPU; ok is false
// when no GPU is waiting to clear.
func (t *Tracker) NextExpiry() (at time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range t.gpus {
		if c, found := g.clearAt(); found && (!ok || c.Before(at)) {
			at, ok = c, true
		}
	}
	return at, ok
}

// Records returns the recent events of a GPU, oldest first.
func (t *Tracker) Records(uuid string) []Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.gpus[uuid]; ok {
		return slices.Clone(g.records)
	}
	return nil
}

// Device is what the tracker needs to know of a published device: its GPU
// and, for a MIG placement, the memory slices it takes.
type Device struct {
	GPU       string
	Placement *inventory.MIGPlacement
}

// Taints returns the health taints of a device, sorted by key: for each key,
// the value of the fault that came last and the strongest effect among
// the faults that concern the device.
func (t *Tracker) Taints(d Device) []resourceapi.DeviceTaint {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.gpus[d.GPU]
	if !ok {
		return nil
	}
	var out []resourceapi.DeviceTaint
	for _, f := range g.faults {
		if !concerns(f.placement, d.Placement) {
			continue
		}
		i := slices.IndexFunc(out, func(x resourceapi.DeviceTaint) bool { return x.Key == f.key })
		if i < 0 {
			out = append(out, resourceapi.DeviceTaint{Key: f.key, Value: f.value, Effect: f.effect,
				TimeAdded: &metav1.Time{Time: f.since.Truncate(time.Second)}})
			continue
		}
		if f.since.After(out[i].TimeAdded.Time) {
			out[i].Value = f.value
		}
		if f.effect == resourceapi.DeviceTaintEffectNoExecute {
			out[i].Effect = f.effect
		}
	}
	slices.SortFunc(out, func(a, b resourceapi.DeviceTaint) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// concerns reports whether a fault on scope concerns a device taking
// device's memory slices (nil: the whole GPU).
func concerns(scope, device *inventory.MIGPlacement) bool {
	return scope == nil || device == nil || scope.Overlaps(*device)
}

// Health says whether a device is usable: Unhealthy with the reason while
// its GPU does not answer or a fault concerns it, else Healthy.
func (t *Tracker) Health(d Device) (healthy bool, reason string) {
	taints := t.Taints(d)
	t.mu.Lock()
	lost := t.gpus[d.GPU] != nil && t.gpus[d.GPU].lost
	t.mu.Unlock()
	if lost {
		return false, "GPU does not answer NVML"
	}
	if len(taints) > 0 {
		reasons := make([]string, 0, len(taints))
		for _, taint := range taints {
			reasons = append(reasons, fmt.Sprintf("%s=%s:%s", taint.Key, taint.Value, taint.Effect))
		}
		return false, fmt.Sprint(reasons)
	}
	return true, ""
}
