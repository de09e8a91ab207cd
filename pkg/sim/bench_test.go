package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedData is the openb trace next to the repository, when present.
const sharedData = "../../../shared/data/openb"

func loadShared(t testing.TB, pods string) *Trace {
	t.Helper()
	nodesPath := filepath.Join(sharedData, NodeListFile)
	if _, err := os.Stat(nodesPath); err != nil {
		t.Skipf("openb trace not found at %s: %v", sharedData, err)
	}
	nodes, err := LoadNodes(nodesPath)
	require.NoError(t, err)
	p, err := LoadPods(filepath.Join(sharedData, pods))
	require.NoError(t, err)
	return &Trace{Name: pods, Nodes: nodes, Pods: p}
}

// TestSmokeOpenB replays a small sample of the real trace: the first 2000
// pods, one seed, the frag scorer.
func TestSmokeOpenB(t *testing.T) {
	tr := loadShared(t, DefaultPodList)
	require.Len(t, tr.Nodes, 1213)
	rep, err := Run(context.Background(), tr, Options{
		Scorers: []string{ScorerFrag}, Seeds: []int64{42}, MaxLoad: 1.3, Parallel: 1, MaxPods: 2000, Publish: SlicesPublisher,
	})
	require.NoError(t, err)
	require.Equal(t, 6212, rep.GPUs)
	s := rep.Summaries[0]
	assert.Zero(t, s.Divergence)
	assert.Len(t, s.Curve, 131)
	assert.InDelta(t, 50, s.Curve[50], 1, "below capacity every pod fits")
	assert.Greater(t, s.AllocAtMax, 85.0)
	assert.Less(t, s.AllocAtMax, 100.0)
	assert.Greater(t, s.FragRatio, 50.0)
}

// BenchmarkAllocateOpenB replays the default trace to 130% with one seed
// per scorer and reports claims/s (end to end and inside the allocator)
// and the allocation rate.
func BenchmarkAllocateOpenB(b *testing.B) {
	tr := loadShared(b, DefaultPodList)
	for _, name := range ScorerNames() {
		b.Run(name, func(b *testing.B) {
			var rep *Report
			for i := 0; i < b.N; i++ {
				var err error
				rep, err = Run(context.Background(), tr, Options{
					Scorers: []string{name}, Seeds: []int64{42}, MaxLoad: 1.3, Parallel: 1, Publish: SlicesPublisher,
				})
				require.NoError(b, err)
			}
			s := rep.Summaries[0]
			b.ReportMetric(s.ClaimsPerSec, "claims/s")
			b.ReportMetric(s.AllocatorClaimsPerSec, "alloc-claims/s")
			b.ReportMetric(s.AllocAtMax, "alloc%@130")
			b.ReportMetric(float64(rep.PeakHeapBytes)/(1<<20), "peak-MiB")
		})
	}
}
