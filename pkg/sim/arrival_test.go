package sim

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gpuTotal(pods []Pod) int64 {
	var t int64
	for _, p := range pods {
		t += p.GPURequest()
	}
	return t
}

func names(pods []Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func numbered(n int) []Pod {
	pods := make([]Pod, n)
	for i := range pods {
		pods[i] = Pod{Name: fmt.Sprintf("p-%02d", i), MilliCPU: 1000, NumGPU: 1, GPUMilli: int64(100 + 10*i)}
	}
	return pods
}

func TestFGDWorkloadOrder(t *testing.T) {
	pods := numbered(6)
	reversed := make([]Pod, len(pods))
	for i, p := range pods {
		reversed[len(pods)-1-i] = p
	}
	// 6 pods of 100-150 milli (750) grown to 2,000 milli.
	got := fgdWorkload(pods, 2, 1000, 42)
	// The trace's order does not matter: FGD sorts by name first.
	assert.Equal(t, names(got), names(fgdWorkload(reversed, 2, 1000, 42)))
	// The originals come first, each once, in math/rand's Shuffle order
	// for seed 42 after one Int (pinned; the same order as FGD's path:
	// the global rand.Seed(42), rand.Int(), rand.Shuffle, checked with
	// GODEBUG=randseednop=0).
	require.GreaterOrEqual(t, len(got), len(pods))
	assert.ElementsMatch(t, names(pods), names(got[:len(pods)]))
	assert.Equal(t, []string{"p-01", "p-02", "p-04", "p-05", "p-03", "p-00"}, names(got[:len(pods)]))
}

func TestFGDWorkloadStopRule(t *testing.T) {
	frac := Pod{Name: "f", MilliCPU: 1000, NumGPU: 1, GPUMilli: 500}
	eight := Pod{Name: "e", MilliCPU: 1000, NumGPU: 8, GPUMilli: 1000}
	cpu := Pod{Name: "c", MilliCPU: 1000}
	tests := map[string]struct {
		pods      []Pod
		maxLoad   float64
		wantLen   int
		wantTotal int64
	}{
		"fractional pods fill the target exactly": {
			pods: []Pod{frac}, maxLoad: 1.3, wantLen: 26, wantTotal: 13000,
		},
		"the check adds the per-GPU share, so an 8-GPU pod passes the target": {
			// 8,000 + 1,000 <= 13,000: appended; 16,000 + 1,000 > 13,000: stop.
			pods: []Pod{eight}, maxLoad: 1.3, wantLen: 2, wantTotal: 16000,
		},
		"a trace above the target loses pods": {
			pods: []Pod{eight, {Name: "e2", NumGPU: 8, GPUMilli: 1000}}, maxLoad: 1.3, wantLen: 1, wantTotal: 8000,
		},
		"a trace at the target is kept as is": {
			pods: []Pod{eight, cpu, {Name: "g", NumGPU: 2, GPUMilli: 1000}}, maxLoad: 1, wantLen: 3, wantTotal: 10000,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := fgdWorkload(tc.pods, tc.maxLoad, 10000, 7)
			assert.Len(t, got, tc.wantLen)
			assert.Equal(t, tc.wantTotal, gpuTotal(got))
		})
	}
	t.Run("CPU-only pods never stop the resampling", func(t *testing.T) {
		got := fgdWorkload([]Pod{cpu, frac}, 1.3, 10000, 7)
		assert.Equal(t, int64(13000), gpuTotal(got))
		cpus := 0
		for _, p := range got {
			if p.NumGPU == 0 {
				cpus++
			}
		}
		assert.Greater(t, cpus, 1, "CPU-only pods are resampled too")
		// The next draw stopped it: only a GPU pod can.
		assert.Greater(t, gpuTotal(got)+frac.GPUMilli, int64(13000))
	})
}

func TestFGDWorkloadDeterministic(t *testing.T) {
	pods := numbered(40)
	before := names(pods)
	// 11,800 milli grown to 15,600.
	a := fgdWorkload(pods, 1.3, 12000, 42)
	assert.Equal(t, names(a), names(fgdWorkload(pods, 1.3, 12000, 42)), "same seed, same arrivals")
	assert.NotEqual(t, names(a), names(fgdWorkload(pods, 1.3, 12000, 43)), "another seed, other arrivals")
	assert.LessOrEqual(t, gpuTotal(a), int64(15600))
	assert.Greater(t, len(a), len(pods), "below the target pods are appended")
	assert.Equal(t, before, names(pods), "the caller's slice is not reordered")
}

func TestRunArrival(t *testing.T) {
	tr := loadTestTrace(t)
	for _, arrival := range ArrivalNames() {
		rep, err := Run(t.Context(), tr, Options{Scorers: []string{ScorerFrag}, Seeds: []int64{1}, MaxLoad: 1.3, Parallel: 1, Arrival: arrival, Publish: SlicesPublisher})
		require.NoError(t, err, arrival)
		assert.Equal(t, arrival, rep.Arrival)
		assert.Len(t, rep.Summaries[0].Curve, 131, arrival)
	}
	_, err := Run(t.Context(), tr, Options{Scorers: []string{ScorerFrag}, Seeds: []int64{1}, MaxLoad: 1.3, Arrival: "fifo", Publish: SlicesPublisher})
	assert.ErrorContains(t, err, `unknown arrival generator "fifo"`)
}

func TestRunOnlineTypical(t *testing.T) {
	tr := loadTestTrace(t)
	rep, err := Run(t.Context(), tr, Options{Scorers: []string{ScorerYield}, Seeds: []int64{1}, MaxLoad: 1.3, Parallel: 1, OnlineTypical: true, Publish: SlicesPublisher})
	require.NoError(t, err)
	assert.Equal(t, "online", rep.Typical)
	s := rep.Summaries[0]
	assert.Zero(t, s.Divergence)
	assert.Len(t, s.Curve, 131)
	assert.Positive(t, s.AllocAtMax)

	pub, err := publish(tr.Nodes, SlicesPublisher)
	require.NoError(t, err)
	e := newTestEnv(t, tr.Nodes, tr.Pods, ScorerYield)
	e.classes = nil
	cpu := Pod{Name: "c", MilliCPU: 1000}
	e.learn(cpu)
	assert.Empty(t, e.classes, "a CPU-only pod teaches no typical pod")
	for i := 1; i < learnEvery; i++ {
		e.learn(tr.Pods[i%len(tr.Pods)])
	}
	assert.Equal(t, typicalClasses(e.seen, pub.shapes), e.classes, "relearnt from the arrivals so far")
}
