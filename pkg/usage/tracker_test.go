package usage_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

var h200Sizes = []usage.Size{
	{Name: "inference 1g.18gb", Product: "NVIDIA H200", MemoryBytes: 18 * gib, Multiprocessors: 16, CostPerHour: 0.44},
	{Name: "inference 2g.35gb", Product: "NVIDIA H200", MemoryBytes: 35 * gib, Multiprocessors: 32, CostPerHour: 0.88},
	{Name: "inference 3g.71gb", Product: "NVIDIA H200", MemoryBytes: 71 * gib, Multiprocessors: 60, CostPerHour: 1.75},
	{Name: "inference L4", Product: "NVIDIA L4", MemoryBytes: 22 * gib, Multiprocessors: 58, CostPerHour: 0.30},
}

var t0 = time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)

func newTracker(t *testing.T) (*usage.Tracker, *clocktesting.FakePassiveClock) {
	t.Helper()
	clk := clocktesting.NewFakePassiveClock(t0)
	tr, err := usage.NewTracker(usage.TrackerOptions{Clock: clk, Sizes: h200Sizes})
	require.NoError(t, err)
	return tr, clk
}

var pod = usage.Pod{UID: "uid-a", Name: "a"}

// step is one reading, minutes after t0, of the SM % (and memory) of
// pod a's one process on each GPU, nil for no process.
type step struct {
	at        time.Duration
	sm        []float64
	memGiB    uint64
	wantIdle  bool
	becomeIdl bool
}

func observe(tr *usage.Tracker, clk *clocktesting.FakePassiveClock, c usage.Claim, s step) usage.Changes {
	clk.SetTime(t0.Add(s.at))
	var procs []nvgpu.ProcessUse
	for i, sm := range s.sm {
		if sm >= 0 {
			procs = append(procs, proc(uint32(10+i), c.Devices[i].GPU.UUID, sm, s.memGiB))
		}
	}
	claims := []usage.Claim{c}
	return tr.Observe(claims, usage.Attribute(procs, pidMap{10: "uid-a", 11: "uid-a", 12: "uid-a", 13: "uid-a"}, claims))
}

func TestTrackerIdle(t *testing.T) {
	four := claim("four", []usage.Pod{pod}, usage.WholeGPU("GPU-0"), usage.WholeGPU("GPU-1"),
		usage.WholeGPU("GPU-2"), usage.WholeGPU("GPU-3"))
	tests := map[string][]step{
		"below the threshold for the window": {
			{at: 0, sm: []float64{0, 4, -1, 4.9}},
			{at: time.Hour, sm: []float64{1, 1, 1, 1}},
			{at: 2 * time.Hour, sm: []float64{-1, -1, -1, -1}, wantIdle: true, becomeIdl: true},
			{at: 3 * time.Hour, sm: []float64{0, 0, 0, 0}, wantIdle: true},
		},
		"one busy GPU keeps the claim busy": {
			{at: 0, sm: []float64{0, 0, 0, 0}},
			{at: time.Hour, sm: []float64{0, 0, 5, 0}},
			{at: 2 * time.Hour, sm: []float64{0, 0, 0, 0}},
			{at: 3 * time.Hour, sm: []float64{0, 0, 0, 0}, wantIdle: true, becomeIdl: true},
		},
		"busy again ends idleness": {
			{at: 0, sm: []float64{0, 0, 0, 0}},
			{at: 2 * time.Hour, sm: []float64{0, 0, 0, 0}, wantIdle: true, becomeIdl: true},
			{at: 2*time.Hour + time.Minute, sm: []float64{90, 0, 0, 0}},
			{at: 4*time.Hour + time.Minute, sm: []float64{0, 0, 0, 0}, wantIdle: true, becomeIdl: true},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			tr, clk := newTracker(t)
			for _, s := range steps {
				ch := observe(tr, clk, four, s)
				rep := tr.Report()
				require.Len(t, rep, 1)
				assert.Equal(t, s.wantIdle, rep[0].Idle, "at %s", s.at)
				if s.becomeIdl {
					require.Len(t, ch.BecameIdle, 1, "at %s", s.at)
					assert.Equal(t, "GPU idle for 2h; the claim claim-four holds 4 H200s", usage.IdleMessage(ch.BecameIdle[0]))
				} else {
					assert.Empty(t, ch.BecameIdle, "at %s", s.at)
				}
			}
		})
	}
}

// NVML cannot tell SM use inside MIG: a MIG claim with processes is not
// idle; one without is.
func TestTrackerMIG(t *testing.T) {
	tr, clk := newTracker(t)
	c := claim("mig", []usage.Pod{pod}, usage.MIGRef("GPU-0", 2, 0))
	c.Devices[0].Profile = "3g.71gb"
	idle := claim("idle-mig", []usage.Pod{{UID: "uid-z", Name: "z"}}, usage.MIGRef("GPU-0", 3, 0))
	claims := []usage.Claim{c, idle}
	pids := pidMap{10: "uid-a"}
	for _, at := range []time.Duration{0, time.Hour, 2 * time.Hour} {
		clk.SetTime(t0.Add(at))
		tr.Observe(claims, usage.Attribute([]nvgpu.ProcessUse{migProc(10, "GPU-0", 2, 0, 3)}, pids, claims))
	}
	rep := tr.Report()
	require.Len(t, rep, 2)
	assert.Equal(t, "idle-mig", rep[0].Claim.UID)
	assert.True(t, rep[0].Idle)
	assert.False(t, rep[1].Idle)
	assert.False(t, rep[1].PeakSMKnown)
	assert.Nil(t, rep[1].Suggestion, "no suggestion without SM samples")
	assert.Equal(t, uint64(3*gib), rep[1].PeakMemoryBytes)
	assert.Equal(t, "GPU idle for 2h; the claim claim-idle-mig holds 1 H200", usage.IdleMessage(rep[0]))

	clk.SetTime(t0.Add(3 * time.Hour))
	tr.Observe(claims[:1], usage.Attribution{})
	assert.Len(t, tr.Report(), 1, "an unprepared claim is forgotten")
}

func TestTrackerSuggestsASmallerSize(t *testing.T) {
	whole := claim("whole", []usage.Pod{pod}, usage.WholeGPU("GPU-0"))
	whole.CostPerHour = 3.50
	four := claim("four", []usage.Pod{pod}, usage.WholeGPU("GPU-0"), usage.WholeGPU("GPU-1"),
		usage.WholeGPU("GPU-2"), usage.WholeGPU("GPU-3"))
	four.CostPerHour = 14
	tests := map[string]struct {
		claim    usage.Claim
		steps    []step
		wantText string
	}{
		"peak fits 1g": {claim: whole, steps: []step{
			{at: 0, sm: []float64{9}, memGiB: 8}, {at: time.Hour, sm: []float64{3}, memGiB: 11}, {at: 2 * time.Hour, sm: []float64{6}, memGiB: 2}},
			wantText: "peak 11 GiB / 9% SM: inference 1g.18gb would fit, $0.44/h instead of $3.50/h"},
		"SM over 1g's share with headroom: 2g": {claim: whole, steps: []step{
			{at: 0, sm: []float64{12}, memGiB: 11}, {at: 2 * time.Hour, sm: []float64{1}, memGiB: 1}},
			wantText: "peak 11 GiB / 12% SM: inference 2g.35gb would fit, $0.88/h instead of $3.50/h"},
		"memory of a whole GPU: nothing smaller": {claim: whole, steps: []step{
			{at: 0, sm: []float64{9}, memGiB: 100}, {at: 2 * time.Hour, sm: []float64{1}, memGiB: 1}}},
		"watched less than the window": {claim: whole, steps: []step{
			{at: 0, sm: []float64{9}, memGiB: 1}, {at: time.Hour, sm: []float64{1}, memGiB: 1}}},
		"per device of a multi-GPU claim": {claim: four, steps: []step{
			{at: 0, sm: []float64{20, 30, 10, 35}, memGiB: 30}, {at: 2 * time.Hour, sm: []float64{1, 1, 1, 1}, memGiB: 1}},
			wantText: "peak 30 GiB / 35% SM per device: 4 x inference 3g.71gb would fit, $7.00/h instead of $14.00/h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr, clk := newTracker(t)
			var became []usage.ClaimReport
			for _, s := range tc.steps {
				became = append(became, observe(tr, clk, tc.claim, s).BecameOversized...)
			}
			rep := tr.Report()
			require.Len(t, rep, 1)
			if tc.wantText == "" {
				assert.Nil(t, rep[0].Suggestion)
				assert.Empty(t, became)
				return
			}
			require.NotNil(t, rep[0].Suggestion)
			assert.Equal(t, tc.wantText, rep[0].Suggestion.Text)
			require.Len(t, became, 1, "reported once")
			assert.Contains(t, usage.OversizedMessage(became[0]), tc.wantText)
		})
	}
}

func TestNewTrackerValidates(t *testing.T) {
	tests := map[string]struct {
		opts    usage.TrackerOptions
		wantMsg string
	}{
		"threshold over 1": {opts: usage.TrackerOptions{IdleThreshold: 5}, wantMsg: "idle threshold 5"},
		"negative window":  {opts: usage.TrackerOptions{IdleWindow: -time.Hour}, wantMsg: "idle window"},
		"size without SMs": {opts: usage.TrackerOptions{Sizes: []usage.Size{{Name: "x", MemoryBytes: 1}}}, wantMsg: "size x"},
		"nameless size":    {opts: usage.TrackerOptions{Sizes: []usage.Size{{MemoryBytes: 1, Multiprocessors: 1}}}, wantMsg: "without a name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := usage.NewTracker(tc.opts)
			assert.ErrorContains(t, err, tc.wantMsg)
		})
	}
}
