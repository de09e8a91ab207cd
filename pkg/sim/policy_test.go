package sim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// migCluster publishes testdata/mig's H100/H200 nodes under a policy file.
func migCluster(t *testing.T, policyFile string) (*Cluster, []Pod) {
	t.Helper()
	nodes, err := LoadNodes("testdata/mig/nodes.csv")
	require.NoError(t, err)
	pods, err := LoadPods("testdata/mig/pods.csv")
	require.NoError(t, err)
	policy, err := plan.LoadPolicy(filepath.Join("testdata/mig", policyFile))
	require.NoError(t, err)
	cl, err := PublishCluster(context.Background(), nodes, policy)
	require.NoError(t, err)
	cl.Name = strings.TrimSuffix(policyFile, ".yaml")
	return cl, pods
}

func TestPublishClusterFollowsThePolicy(t *testing.T) {
	cl, _ := migCluster(t, "mig.yaml")
	require.Len(t, cl.Nodes, 4)
	assert.Equal(t, 32, cl.GPUs)
	assert.Equal(t, []string{"training", "inference"}, cl.TierNames())
	migDevices := map[string]int{}
	for _, n := range cl.Nodes {
		for _, s := range n.Slices {
			for _, d := range s.Spec.Devices {
				if slices.StringAttribute(d, slices.AttrMIGProfile) != "" {
					migDevices[n.Name]++
					assert.Equal(t, "inference", slices.StringAttribute(d, slices.AttrTier))
				}
			}
		}
	}
	// The inference-labelled nodes' GPUs are put in MIG mode and publish
	// every placement; the unlabelled H100 node serves training whole.
	assert.Equal(t, 0, migDevices["h100-1"])
	for _, n := range []string{"h200-0", "h200-1", "h100-0"} {
		assert.Greater(t, migDevices[n], 8*7, "node %s", n)
	}
	prep := prepare(cl, nil)
	assert.Equal(t, map[string]int{"training": 8, "inference": 24}, prep.tierGPUs)
}

// TestMIGEraCluster places each pod shape on an H100/H200 MIG cluster and
// checks the device the scheduler's allocator gave it, by the GPU share it
// holds: MIG slices hold their memory slices of 8.
func TestMIGEraCluster(t *testing.T) {
	cl, pods := migCluster(t, "mig.yaml")
	p := prepare(cl, TypicalPods(pods))
	s, err := NewScorer(ScorerFrag)
	require.NoError(t, err)
	e := newPolicyEnv(p, s, 42)
	want := map[string]map[string]int64{
		"p1g-a":    {"inference": 125},
		"p1g-b":    {"inference": 125},
		"p2g-a":    {"inference": 250},
		"p3g-a":    {"inference": 500},
		"p-frac-a": {"inference": 500}, // 300 milli: 3g, 3 of 7 compute slices
		"p-frac-b": {"inference": 125}, // 100 milli: 1g
		"p-whole":  {"training": 2000},
		"p-cpu":    {},
	}
	for _, pod := range pods {
		held, err := e.place(context.Background(), pod)
		require.NoError(t, err)
		assert.Equal(t, want[pod.Name], held, "pod %s", pod.Name)
	}
	assert.Zero(t, e.stats.Divergence, "the prefilter and the allocator disagreed")
	// 3g instances fit the 24 MIG GPUs twice each and never spill onto
	// the training tier's whole GPUs.
	threeG := Pod{Name: "3g", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 1, MIGSlices: 3, GPUMilli: 429}
	e = newPolicyEnv(p, s, 42)
	placed := 0
	for range 60 {
		held, err := e.place(context.Background(), threeG)
		require.NoError(t, err)
		if held != nil {
			placed++
		}
	}
	assert.Equal(t, 2*24, placed)
}

func TestCompareTwoPoliciesInOneTable(t *testing.T) {
	shared, pods := migCluster(t, "shared.yaml")
	mig, _ := migCluster(t, "mig.yaml")
	cmp, err := Compare(context.Background(), []*Cluster{shared, mig}, &Trace{Name: "mig", Pods: pods},
		CompareOptions{Scorers: []string{ScorerBestFit}, Seeds: []int64{42, 43}, MaxLoad: 1.3, Parallel: 2})
	require.NoError(t, err)
	require.Len(t, cmp.Rows, 2)
	sh, mg := cmp.Rows[0], cmp.Rows[1]
	assert.Equal(t, "shared", sh.Cluster)
	assert.Equal(t, "mig", mg.Cluster)
	for _, r := range cmp.Rows {
		assert.Zero(t, r.Divergence, r.Cluster)
		assert.Greater(t, r.AllocAtMax, 50.0, r.Cluster)
		assert.GreaterOrEqual(t, r.HeldAtMax+1e-9, r.AllocAtMax, r.Cluster)
		assert.InDelta(t, float64(r.GPUs)*(1-r.HeldAtMax/100), r.UnallocGPUs, 1e-6, r.Cluster)
	}
	// A share holds what it asks; a MIG slice rounds up to its memory
	// slices, so the MIG policy holds more than its pods ask.
	assert.InDelta(t, sh.AllocAtMax, sh.HeldAtMax, 1e-9)
	assert.Greater(t, mg.HeldAtMax, mg.AllocAtMax)
	require.Len(t, mg.Tiers, 2)
	assert.Equal(t, TierRow{Tier: "training", GPUs: 8}, TierRow{Tier: mg.Tiers[0].Tier, GPUs: mg.Tiers[0].GPUs})
	assert.Equal(t, 24, mg.Tiers[1].GPUs)

	var b strings.Builder
	require.NoError(t, cmp.WriteText(&b))
	out := b.String()
	t.Log("\n" + out)
	assert.Equal(t, 1, strings.Count(out, "alloc@100"), "one table")
	for _, want := range []string{"shared ", "mig ", "training", "inference", "dev"} {
		assert.Contains(t, out, want)
	}
}

func TestNodeListNamesAllowedModels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes.csv")
	require.NoError(t, os.WriteFile(path, []byte("sn,cpu_milli,memory_mib,gpu,model\nn0,1000,1024,8,H300\n"), 0o600))
	_, err := LoadNodes(path)
	require.ErrorIs(t, err, ErrBadTrace)
	assert.Contains(t, err.Error(), `unknown GPU model "H300"`)
	for _, m := range []string{"A100", "B200", "H100", "H200", "L4", "T4", "V100M32", "G2"} {
		assert.Contains(t, err.Error(), m)
	}
	assert.Contains(t, err.Error(), ":2:")
}

func TestPodListReadsMIGProfiles(t *testing.T) {
	pods, err := LoadPods("testdata/mig/pods.csv")
	require.NoError(t, err)
	byName := map[string]Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	assert.Equal(t, 2, byName["p2g-a"].MIGSlices)
	assert.Equal(t, int64(286), byName["p2g-a"].GPUMilli)
	assert.Equal(t, 1, byName["p1g-b"].MIGSlices)
	path := filepath.Join(t.TempDir(), "pods.csv")
	require.NoError(t, os.WriteFile(path, []byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli,mig_profile\np,1,1,1,0,5g\n"), 0o600))
	_, err = LoadPods(path)
	require.ErrorIs(t, err, ErrBadTrace)
	assert.Contains(t, err.Error(), "1g, 2g, 3g, 4g, 7g")
}

// TestSharedPolicyMatchesTheBenchmark replays the openb test trace under
// the benchmark's Shared policy through Compare (tier classes, the
// scorer's inventory and demand, as tierra-scheduler reads them) and
// through Run (the benchmark's own path): every seed's curve agrees.
func TestSharedPolicyMatchesTheBenchmark(t *testing.T) {
	tr := loadTestTrace(t)
	scorers := []string{ScorerDefault, ScorerBestFit, ScorerFrag}
	seeds := []int64{42, 43}
	rep, err := Run(context.Background(), tr, Options{Scorers: scorers, Seeds: seeds, MaxLoad: 1.3, Parallel: 2, Publish: SlicesPublisher})
	require.NoError(t, err)
	cl, err := PublishCluster(context.Background(), tr.Nodes, SharedPolicy())
	require.NoError(t, err)
	cmp, err := Compare(context.Background(), []*Cluster{cl}, tr, CompareOptions{Scorers: scorers, Seeds: seeds, MaxLoad: 1.3, Parallel: 2})
	require.NoError(t, err)
	got := map[[2]any][]float64{}
	for _, r := range cmp.Results {
		got[[2]any{r.Scorer, r.Seed}] = r.Curve
	}
	require.Len(t, rep.Results, len(cmp.Results))
	for _, r := range rep.Results {
		assert.InDeltaSlice(t, r.Curve, got[[2]any{r.Scorer, r.Seed}], 1e-9, "scorer %s seed %d", r.Scorer, r.Seed)
	}
}

// TestBenchmarkRunsOnCatalogueNodes: without a policy, H100/H200 nodes
// run the benchmark's path (one shared device per GPU), which used to
// refuse them as unknown models.
func TestBenchmarkRunsOnCatalogueNodes(t *testing.T) {
	nodes, err := LoadNodes("testdata/mig/nodes.csv")
	require.NoError(t, err)
	pods, err := LoadPods("testdata/mig/pods.csv")
	require.NoError(t, err)
	rep, err := Run(context.Background(), &Trace{Name: "mig", Nodes: nodes, Pods: pods},
		Options{Scorers: []string{ScorerFrag}, Seeds: []int64{42}, MaxLoad: 1.3, Publish: SlicesPublisher})
	require.NoError(t, err)
	assert.Equal(t, 32, rep.GPUs)
	assert.Greater(t, rep.Summaries[0].AllocAtMax, 50.0)
	assert.Zero(t, rep.Summaries[0].Divergence)
}
