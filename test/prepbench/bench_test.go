package prepbench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// BenchmarkPrepare measures prepare+unprepare pairs over the DRA socket for
// every (claims held, mode, concurrency) case; b.N is the number of pairs.
// Run it with a fixed count so the percentiles have samples:
//
//	cd test && go test -run '^$' -bench . -benchtime 1000x ./prepbench/
//
// Metrics: prepare p50 and p99 (ms, including the plugin's claim GET from
// the apiserver), pairs/s, and per pair the time in each pkg/prepare step.
// MIG runs at most 28 claims at once, the 1g placements of its 4 MIG GPUs.
func BenchmarkPrepare(b *testing.B) {
	e := getEnv(b)
	c, closeConn, err := dial(e.socket)
	require.NoError(b, err)
	b.Cleanup(func() { _ = closeConn() })
	for _, held := range []int{1, 1000} {
		for _, m := range []mode{exclusive, mig1g} {
			for _, conc := range []int{1, 10, 100} {
				b.Run(fmt.Sprintf("held=%d/%s/conc=%d", held, m.name, conc), func(b *testing.B) {
					require.NoError(b, e.hold(e.ctx, c, held))
					claims, err := e.claims(m, conc)
					require.NoError(b, err)
					_, err = e.run(e.ctx, c, claims, len(claims)) // warm up
					require.NoError(b, err)
					b.ResetTimer()
					r, err := e.run(e.ctx, c, claims, b.N)
					b.StopTimer()
					require.NoError(b, err)
					report(b, r, len(claims))
				})
			}
		}
	}
	require.NoError(b, e.hold(e.ctx, c, 0))
}

func report(b *testing.B, r result, workers int) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(r.pct(0.50)), "p50-ms")
	b.ReportMetric(ms(r.pct(0.99)), "p99-ms")
	b.ReportMetric(r.pairsPerSec(), "pairs/s")
	b.ReportMetric(float64(workers), "workers")
	for _, s := range []prepare.Step{prepare.StepCheckpoint, prepare.StepNVML, prepare.StepCDI, prepare.StepTenant} {
		b.ReportMetric(ms(r.perPair(s)), string(s)+"-ms/pair")
	}
}

// TestPrepBenchSmall runs the benchmark's code at a tiny scale: every
// pair succeeds, the steps are timed, and nothing stays prepared after.
func TestPrepBenchSmall(t *testing.T) {
	e := getEnv(t)
	c, closeConn, err := dial(e.socket)
	require.NoError(t, err)
	t.Cleanup(func() { _ = closeConn() })
	require.NoError(t, e.hold(e.ctx, c, 3))
	for _, m := range []mode{exclusive, mig1g} {
		claims, err := e.claims(m, 3)
		require.NoError(t, err)
		r, err := e.run(e.ctx, c, claims, 9)
		require.NoError(t, err, m.name)
		assert.Equal(t, 9, r.pairs, m.name)
		assert.Positive(t, r.pct(0.5), m.name)
		assert.LessOrEqual(t, r.pct(0.5), r.pct(0.99), m.name)
		assert.Positive(t, r.pairsPerSec(), m.name)
		assert.Positive(t, r.steps[prepare.StepCheckpoint], "%s: checkpoint timed", m.name)
		assert.Positive(t, r.steps[prepare.StepCDI], "%s: CDI timed", m.name)
		assert.Positive(t, r.steps[prepare.StepNVML], "%s: NVML timed", m.name)
		t.Logf("%s: %d pairs, prepare p50 %v p99 %v, %.0f pairs/s", m.name, r.pairs, r.pct(0.5), r.pct(0.99), r.pairsPerSec())
	}
	require.NoError(t, e.hold(e.ctx, c, 0))

	m, err := e.gpus.Machine(e.ctx)
	require.NoError(t, err)
	for _, g := range m.GPUs {
		if g.MIG != nil {
			assert.Empty(t, g.MIG.Instances, "MIG instances left on GPU %d", g.Index)
		}
	}
	for _, dir := range []string{filepath.Join(e.cfg.StateDir, "checkpoint"), e.cfg.CDIDir} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, en := range entries {
			assert.True(t, en.IsDir(), "left in %s: %s", dir, en.Name())
		}
	}
}

// BenchmarkClaimGET is the floor under prepare: one GET of a claim from the
// apiserver with the plugin's client, as the kubelet plugin helper does
// at the start of every NodePrepareResources.
func BenchmarkClaimGET(b *testing.B) {
	e := getEnv(b)
	refs, err := e.claims(exclusive, 1)
	require.NoError(b, err)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t := time.Now()
		_, err := e.cs.ResourceV1().ResourceClaims(namespace).Get(e.ctx, refs[0].name, metav1.GetOptions{})
		lat = append(lat, time.Since(t))
		require.NoError(b, err)
	}
	r := result{prepare: lat}
	slices.Sort(r.prepare)
	b.ReportMetric(float64(r.pct(0.5))/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(r.pct(0.99))/float64(time.Millisecond), "p99-ms")
}
