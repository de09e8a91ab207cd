package scheduler

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/openb"
	"github.com/tierra-gpu/tierra/test/stack"
)

// The comparison's size: disjoint cells of 40 openb nodes as in the
// fidelity test (under 100, so both schedulers score every feasible node),
// three of them rather than its six: each cell exists twice, one copy per
// scheduler, both run at once on the same pods, and the sequential arrival
// has to stay within about two minutes on two cores.
const (
	numCells = 3
	cellSize = 40
	load     = 1.3
	seed     = 42
	simSeeds = 5
	// gain is the least lead of tierra-scheduler over kube-scheduler, and
	// simGap the most its share may differ from the simulation's frag
	// scorer on the same pods and target workload (points of GPU share).
	gain   = 1.0
	simGap = 1.0
)

// TestTierraSchedulerYield schedules the same openb pods through plain
// kube-scheduler and through tierra-scheduler (a second scheduler, its own
// profile with TierraYield), each on its own copy of the cells, and
// requires tierra-scheduler to allocate at least a point more of the GPUs
// and to agree with the simulation within a point.
func TestTierraSchedulerYield(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts a control plane")
	}
	if err := cluster.CheckBinaries("", true); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := stack.SchedulerBinary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	nodes, pods := openb.Load(t, sim.DefaultPodList)
	cells := makeCells(nodes, pods, numCells, cellSize, load, rand.New(rand.NewPCG(seed, 0)))
	var all []sim.Pod
	var capacity int64
	for _, c := range cells {
		all = append(all, c.pods...)
		capacity += gpusOf(c.nodes) * 1000
	}
	typical := sim.TypicalPods(all)
	t.Logf("%d cells of %d nodes, %d GPUs, %d pods arriving at %.0f%% of GPU capacity; %d typical pods",
		numCells, cellSize, capacity/1000, len(all), load*100, len(typical))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	defLive, tierraLive := lives(t, cells, "d-", ""), lives(t, cells, "t-", stack.SchedulerName)
	simShare := simulate(ctx, t, tierraLive, score.Frag, typical)
	simDefault := simulate(ctx, t, defLive, score.Default, nil)

	t0 := time.Now()
	placed := runLive(ctx, t, append(append([]live{}, defLive...), tierraLive...), typical)
	wall := time.Since(t0)
	defShare := share(defLive, placed[:len(defLive)], capacity)
	tierraShare := share(tierraLive, placed[len(defLive):], capacity)
	t.Logf("allocated GPU share at %.0f%% load: kube-scheduler %.2f%%, tierra-scheduler %.2f%% (%+.2f points); sim frag %.2f%%, sim default %.2f%% (means of %d seeds); %d pods per scheduler in %s",
		load*100, defShare, tierraShare, tierraShare-defShare, simShare, simDefault, simSeeds, len(all), wall.Round(time.Millisecond))
	assert.GreaterOrEqual(t, tierraShare, defShare+gain, "tierra-scheduler must allocate at least %.1f points more than kube-scheduler", gain)
	assert.InDelta(t, simShare, tierraShare, simGap, "tierra-scheduler and the simulation's frag scorer disagree")
}

// lives publishes one copy of every cell for one scheduler.
func lives(t *testing.T, cells []cell, prefix, scheduler string) []live {
	t.Helper()
	out := make([]live, len(cells))
	for i, c := range cells {
		cp := c.copyOf(prefix)
		fix, err := sim.NewFixture(cp.nodes, sim.SlicesPublisher)
		require.NoError(t, err)
		out[i] = live{cell: cp, fix: fix, scheduler: scheduler}
	}
	return out
}

// simulate is the simulation's mean allocated share over simSeeds seeds;
// typical, when set, is the frag scorer's target workload.
func simulate(ctx context.Context, t *testing.T, ls []live, scorer string, typical []score.Typical) float64 {
	t.Helper()
	var sum float64
	for s := range simSeeds {
		var milli, capacity int64
		for _, l := range ls {
			var placed []string
			var err error
			if typical != nil {
				placed, err = l.fix.ReplayWith(ctx, l.pods, scorer, int64(seed+s), typical)
			} else {
				placed, err = l.fix.Replay(ctx, l.pods, scorer, int64(seed+s))
			}
			require.NoError(t, err)
			milli += allocated(l.pods, placed)
			capacity += gpusOf(l.nodes) * 1000
		}
		sum += 100 * float64(milli) / float64(capacity)
	}
	return sum / simSeeds
}

func share(ls []live, placed [][]string, capacity int64) float64 {
	var milli int64
	for i, l := range ls {
		milli += allocated(l.pods, placed[i])
	}
	return 100 * float64(milli) / float64(capacity)
}

// runLive starts a control plane with kwok and tierra-scheduler, creates
// every cell's nodes and slices, and schedules the cells' pods, the cells
// concurrently, each cell's pods in order.
func runLive(ctx context.Context, t *testing.T, ls []live, typical []score.Typical) [][]string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tierra-scheduler-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		}
	})
	c, err := cluster.Start(ctx, cluster.Options{StateDir: dir, Kwok: true, StopWithParent: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	require.NoError(t, stack.StartTierraScheduler(ctx, c, typical))
	cs, err := c.Clientset()
	require.NoError(t, err)
	_, err = cs.ResourceV1().DeviceClasses().Create(ctx, sim.DeviceClass(), metav1.CreateOptions{})
	require.NoError(t, err)
	total := 0
	for _, l := range ls {
		require.NoError(t, createNodes(ctx, cs, l))
		total += len(l.nodes)
	}
	require.NoError(t, waitReady(ctx, cs, total), "see %s/logs", dir)
	// Let both schedulers' informers see every node and slice.
	time.Sleep(2 * time.Second)
	w, err := newWatcher(ctx, cs)
	require.NoError(t, err)
	placed := make([][]string, len(ls))
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { placed[i], errs[i] = schedule(ctx, cs, w, l) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err, "see %s/logs", dir)
	}
	return placed
}
