package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTestTrace(t *testing.T) *Trace {
	t.Helper()
	nodes, err := LoadNodes("testdata/nodes.csv")
	require.NoError(t, err)
	pods, err := LoadPods("testdata/pods.csv")
	require.NoError(t, err)
	return &Trace{Name: "testdata", Nodes: nodes, Pods: pods}
}

// newTestEnv publishes nodes and returns a seed's environment.
func newTestEnv(t *testing.T, nodes []Node, pods []Pod, scorer string) *env {
	t.Helper()
	pub, err := publish(nodes, SlicesPublisher)
	require.NoError(t, err)
	s, err := NewScorer(scorer)
	require.NoError(t, err)
	return newEnv(pub, typicalClasses(pods, pub.shapes), s, 42, false)
}

func placeAll(t *testing.T, e *env, pods ...Pod) []bool {
	t.Helper()
	var out []bool
	for _, p := range pods {
		ok, err := e.place(context.Background(), p)
		require.NoError(t, err)
		out = append(out, ok)
	}
	return out
}

// usedMilli lists each GPU's consumed share per node, from the state the
// allocator's results were applied to.
func usedMilli(e *env) map[string][]int64 {
	out := map[string][]int64{}
	for i := range e.states {
		s := &e.states[i]
		for j := range s.GPUs {
			out[s.trace.Name] = append(out[s.trace.Name], 1000-s.FreeMilli(j, e.shapes))
		}
	}
	return out
}

func TestPlacement(t *testing.T) {
	twoT4 := []Node{
		{Name: "a", MilliCPU: 16000, MemoryMiB: 65536, GPUs: 2, Model: "T4"},
		{Name: "b", MilliCPU: 32000, MemoryMiB: 65536, GPUs: 2, Model: "T4"},
	}
	frac := func(m int64) Pod { return Pod{Name: "f", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: m} }
	whole := func(n int) Pod { return Pod{Name: "w", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: n, GPUMilli: 1000} }
	tests := map[string]struct {
		nodes    []Node
		scorer   string
		pods     []Pod
		wantOK   []bool
		wantUsed map[string][]int64
	}{
		"best fit packs fractional pods onto one GPU": {
			nodes: twoT4, scorer: ScorerBestFit,
			pods:     []Pod{frac(300), frac(300), frac(300)},
			wantOK:   []bool{true, true, true},
			wantUsed: map[string][]int64{"a": {900, 0}, "b": {0, 0}},
		},
		"allocator's first fit opens the next GPU when the first is full": {
			nodes: twoT4[:1], scorer: ScorerBestFit,
			pods:     []Pod{frac(600), frac(600), frac(300)},
			wantOK:   []bool{true, true, true},
			wantUsed: map[string][]int64{"a": {900, 600}},
		},
		"whole-GPU count request takes whole devices": {
			nodes: twoT4, scorer: ScorerBestFit,
			pods:     []Pod{whole(2), frac(500), whole(2)},
			wantOK:   []bool{true, true, false},
			wantUsed: map[string][]int64{"a": {1000, 1000}, "b": {500, 0}},
		},
		"cpu gate keeps a pod off a node with free GPUs": {
			nodes:    []Node{{Name: "small", MilliCPU: 2000, MemoryMiB: 65536, GPUs: 2, Model: "T4"}, twoT4[1]},
			scorer:   ScorerBestFit,
			pods:     []Pod{{Name: "big", MilliCPU: 4000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 100}},
			wantOK:   []bool{true},
			wantUsed: map[string][]int64{"small": {0, 0}, "b": {100, 0}},
		},
		"memory gate fails a pod no node can hold": {
			nodes: twoT4, scorer: ScorerRandom,
			pods:     []Pod{{Name: "fat", MilliCPU: 1000, MemoryMiB: 70000, NumGPU: 1, GPUMilli: 100}},
			wantOK:   []bool{false},
			wantUsed: map[string][]int64{"a": {0, 0}, "b": {0, 0}},
		},
		"gpu_spec selects the product through CEL": {
			nodes:    []Node{twoT4[0], {Name: "v", MilliCPU: 32000, MemoryMiB: 65536, GPUs: 1, Model: "V100M32"}},
			scorer:   ScorerBestFit,
			pods:     []Pod{{Name: "s", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 1000, GPUSpec: []string{"V100M32"}}, {Name: "s2", NumGPU: 1, GPUMilli: 100, GPUSpec: []string{"V100M32"}}},
			wantOK:   []bool{true, false},
			wantUsed: map[string][]int64{"a": {0, 0}, "v": {1000}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, tc.nodes, tc.pods, tc.scorer)
			assert.Equal(t, tc.wantOK, placeAll(t, e, tc.pods...))
			assert.Equal(t, tc.wantUsed, usedMilli(e))
			assert.Zero(t, e.stats.Divergence)
		})
	}
}

func TestRunSyntheticTrace(t *testing.T) {
	tr := loadTestTrace(t)
	require.Len(t, tr.Nodes, 10)
	require.Len(t, tr.Pods, 200)
	rep, err := Run(context.Background(), tr, Options{
		Scorers: ScorerNames(), Seeds: []int64{42, 43}, MaxLoad: 1.3, Parallel: 2, Verify: true, Publish: SlicesPublisher,
	})
	require.NoError(t, err)
	require.Len(t, rep.Summaries, len(ScorerNames()))
	for _, s := range rep.Summaries {
		assert.Zero(t, s.Divergence, s.Scorer)
		assert.Len(t, s.Curve, 131, s.Scorer)
		assert.Greater(t, s.AllocAtMax, 50.0, s.Scorer)
		assert.LessOrEqual(t, s.AllocAtMax, 100.0, s.Scorer)
		assert.InDelta(t, 45*(1-s.AllocAtMax/100), s.UnallocGPUs, 1e-9, s.Scorer)
	}
	for _, r := range rep.Results {
		assert.Equal(t, r.Arrived, r.Placed+r.Failed.CPUOnly+r.Failed.Fractional+sumWhole(r.Failed), r.Scorer)
	}
}

func sumWhole(f FailedPods) int {
	n := 0
	for _, v := range f.Whole {
		n += v
	}
	return n
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]struct {
		load    func(string) error
		content string
		want    string
	}{
		"unknown node model": {
			load:    func(p string) error { _, err := LoadNodes(p); return err },
			content: "sn,cpu_milli,memory_mib,gpu,model\nn1,1000,1024,2,H900\n",
			want:    "nodes.csv:2:16: column model: bad trace: unknown GPU model \"H900\"",
		},
		"malformed cpu": {
			load:    func(p string) error { _, err := LoadNodes(p); return err },
			content: "sn,cpu_milli,memory_mib,gpu,model\nn1,lots,1024,2,T4\n",
			want:    "nodes.csv:2:4: column cpu_milli: bad trace: \"lots\" is not an integer",
		},
		"missing column": {
			load:    func(p string) error { _, err := LoadNodes(p); return err },
			content: "sn,cpu_milli,gpu,model\n",
			want:    "nodes.csv:1: bad trace: missing column \"memory_mib\"",
		},
		"fractional multi-GPU pod": {
			load:    func(p string) error { _, err := LoadPods(p); return err },
			content: "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1,1,2,500,\n",
			want:    "nodes.csv:2:9: column gpu_milli: bad trace: 500: a pod with 2 GPUs must take whole GPUs (1000)",
		},
		"unknown gpu_spec model": {
			load:    func(p string) error { _, err := LoadPods(p); return err },
			content: "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1,1,1,500,T4|X1\n",
			want:    "nodes.csv:2:13: column gpu_spec: bad trace: unknown GPU model \"X1\"",
		},
		"short row": {
			load:    func(p string) error { _, err := LoadPods(p); return err },
			content: "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1,1\n",
			want:    "wrong number of fields",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nodes.csv")
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			err := tc.load(path)
			require.ErrorIs(t, err, ErrBadTrace)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
