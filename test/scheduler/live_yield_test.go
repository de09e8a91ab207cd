package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/openb"
	"github.com/tierra-gpu/tierra/test/stack"
)

// TestYieldLive is `make bench-yield-live`: the whole openb cluster (1,213
// kwok nodes, 6,212 GPUs) with the trace's pods resampled until their GPU
// requests reach 130% of capacity, through tierra-scheduler, next to the
// simulation's scorers on the same pods. Set TIERRA_YIELD_LIVE=1 to run it
// (tens of minutes on two cores); TIERRA_YIELD_LIVE_PODS caps the pods.
func TestYieldLive(t *testing.T) {
	if os.Getenv("TIERRA_YIELD_LIVE") != "1" {
		t.Skip("skipping: set TIERRA_YIELD_LIVE=1 (make bench-yield-live)")
	}
	if err := cluster.CheckBinaries("", true); err != nil {
		t.Fatal(err)
	}
	nodes, pods := openb.Load(t, sim.DefaultPodList)
	c := cell{name: "openb", nodes: nodes, pods: grow(pods, gpusOf(nodes)*1300, rand.New(rand.NewPCG(seed, 0)))}
	if n, err := strconv.Atoi(os.Getenv("TIERRA_YIELD_LIVE_PODS")); err == nil && n > 0 && n < len(c.pods) {
		c.pods = c.pods[:n]
	}
	fix, err := sim.NewFixture(c.nodes, sim.SlicesPublisher)
	require.NoError(t, err)
	l := live{cell: c, fix: fix, scheduler: stack.SchedulerName}
	typical := sim.TypicalPods(pods)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()

	t0 := time.Now()
	placed := runLive(ctx, t, []live{l}, typical)[0]
	wall := time.Since(t0)
	capacity := gpusOf(c.nodes) * 1000
	fmt.Printf("openb at %.0f%% load: %d nodes, %d GPUs, %d pods; tierra-scheduler wall %s\n",
		100*float64(arrived(c.pods))/float64(capacity), len(c.nodes), capacity/1000, len(c.pods), wall.Round(time.Second))
	fmt.Printf("%-26s %10s %10s %8s\n", "scheduler", "alloc@100%", "alloc@end", "placed")
	row := func(name string, placed []string) {
		at100, end, n := curve(c.pods, placed, capacity)
		fmt.Printf("%-26s %9.2f%% %9.2f%% %8d\n", name, at100, end, n)
	}
	row("tierra-scheduler (live)", placed)
	for _, s := range []string{score.Frag, score.Default, score.BestFit, score.Random} {
		var simPlaced []string
		if s == score.Frag {
			simPlaced, err = fix.ReplayWith(ctx, c.pods, s, seed, typical)
		} else {
			simPlaced, err = fix.Replay(ctx, c.pods, s, seed)
		}
		require.NoError(t, err)
		row("sim "+s, simPlaced)
	}
}

// grow resamples pods (with replacement, as the simulation does) until
// their GPU requests reach target thousandths of a GPU.
func grow(pods []sim.Pod, target int64, rng *rand.Rand) []sim.Pod {
	var out []sim.Pod
	var total int64
	for total < target {
		p := pods[rng.IntN(len(pods))]
		p.Name = fmt.Sprintf("live-%05d", len(out))
		out = append(out, p)
		total += p.GPURequest()
	}
	return out
}

func arrived(pods []sim.Pod) int64 {
	var n int64
	for _, p := range pods {
		n += p.GPURequest()
	}
	return n
}

// curve is the allocated share when the arrived requests first reach
// capacity, at the end, and the pods placed.
func curve(pods []sim.Pod, placed []string, capacity int64) (at100, end float64, n int) {
	var arr, alloc int64
	at100 = -1
	for i, p := range pods {
		arr += p.GPURequest()
		if placed[i] != "" {
			alloc += p.GPURequest()
			n++
		}
		if at100 < 0 && arr >= capacity {
			at100 = 100 * float64(alloc) / float64(capacity)
		}
	}
	return max(at100, 0), 100 * float64(alloc) / float64(capacity), n
}
