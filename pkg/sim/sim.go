package sim

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/tierra-gpu/tierra/pkg/score"
)

// Options configure a simulation run.
type Options struct {
	// Scorers to compare, by name (see ScorerNames).
	Scorers []string
	// Seeds, one shuffled and grown workload each.
	Seeds []int64
	// MaxLoad is the arrived GPU load to grow to, as a fraction of GPU
	// capacity (1.3 in FGD).
	MaxLoad float64
	// Parallel is how many seeds run at once.
	Parallel int
	// Arrival is the arrival generator (ArrivalFGD when empty).
	Arrival string
	// OnlineTypical learns the typical pods from the pods arrived so far
	// (every learnEvery pods) instead of taking them from the whole trace,
	// which FGD does and which is hindsight.
	OnlineTypical bool
	// MaxPods, when positive, keeps only the trace's first MaxPods pods.
	MaxPods int
	// Verify runs the allocator on every node for every GPU pod and counts
	// disagreements with the prefilter (slow; for tests).
	Verify bool
	// Progress receives one line per finished seed; nil for silence.
	Progress io.Writer
	// Publish publishes a node's GPUs (pkg/slices).
	Publish Publisher
}

// Trace is a node list and a pod list.
type Trace struct {
	Name  string
	Nodes []Node
	Pods  []Pod
}

// FailedPods counts the pods that found no node, by request class.
type FailedPods struct {
	// Whole maps a GPU count to the whole-GPU pods of that size that failed.
	Whole      map[int]int `json:"whole"`
	Fractional int         `json:"fractional"`
	CPUOnly    int         `json:"cpuOnly"`
}

// SeedResult is one scorer on one seed.
type SeedResult struct {
	Scorer string `json:"scorer"`
	Seed   int64  `json:"seed"`
	// Curve[k] is the allocated GPU share (% of capacity) when the arrived
	// GPU requests first reached k% of capacity.
	Curve          []float64     `json:"curve"`
	Arrived        int           `json:"arrivedPods"`
	Placed         int           `json:"placedPods"`
	Claims         int           `json:"claims"`
	AllocatorCalls int           `json:"allocatorCalls"`
	Divergence     int           `json:"divergence"`
	Failed         FailedPods    `json:"failed"`
	UnallocGPUs    float64       `json:"unallocatedGPUs"`
	FragRatio      float64       `json:"fragRatio"`
	Wall           time.Duration `json:"wallNs"`
	AllocatorTime  time.Duration `json:"allocatorNs"`
}

// runSeed replays one grown workload with one scorer.
func runSeed(ctx context.Context, pub *published, tr *Trace, classes []score.Class, scorer Scorer, seed int64, o Options) (SeedResult, error) {
	t0 := time.Now()
	e := newEnv(pub, classes, scorer, seed, o.Verify)
	capacity := int64(pub.gpus) * 1000
	target := int64(o.MaxLoad * float64(capacity))
	var pods []Pod
	if o.Arrival == ArrivalLegacy {
		pods = growWorkload(tr.Pods, target, e.rng)
	} else {
		pods = fgdWorkload(tr.Pods, o.MaxLoad, capacity, seed)
	}
	e.stats = SeedResult{Scorer: scorer.Name(), Seed: seed, Failed: FailedPods{Whole: map[int]int{}}}
	maxK := int(o.MaxLoad*100 + 0.5)
	curve := make([]float64, 0, maxK+1)
	var arrived, allocated int64
	for _, p := range pods {
		if arrived >= target && len(curve) > maxK {
			break
		}
		if err := ctx.Err(); err != nil {
			return SeedResult{}, fmt.Errorf("seed %d: %w", seed, err)
		}
		arrived += p.GPURequest()
		e.stats.Arrived++
		if o.OnlineTypical {
			e.learn(p)
		}
		ok, err := e.place(ctx, p)
		if err != nil {
			return SeedResult{}, fmt.Errorf("seed %d pod %s: %w", seed, p.Name, err)
		}
		if ok {
			e.stats.Placed++
			allocated += p.GPURequest()
		} else {
			e.stats.Failed.add(p)
		}
		for len(curve) <= maxK && arrived*100 >= int64(len(curve))*capacity {
			curve = append(curve, 100*float64(allocated)/float64(capacity))
		}
	}
	// FGD's workload stops just short of the target (at the first pod that
	// would pass it): its last point stands for the target's.
	for len(curve) <= maxK && len(curve) > 0 {
		curve = append(curve, 100*float64(allocated)/float64(capacity))
	}
	e.stats.Curve = curve
	e.stats.UnallocGPUs = float64(capacity-allocated) / 1000
	e.stats.FragRatio = e.fragRatio()
	e.stats.Wall = time.Since(t0)
	e.stats.AllocatorTime = e.allocT
	return e.stats, nil
}

func (f *FailedPods) add(p Pod) {
	switch {
	case p.NumGPU == 0:
		f.CPUOnly++
	case p.Fractional():
		f.Fractional++
	default:
		f.Whole[p.NumGPU]++
	}
}

// fragRatio is FGD's cluster fragmentation ratio: the expected fragmented
// GPU share over all idle GPU share, in percent.
func (e *env) fragRatio() float64 {
	var frag, idle float64
	for i := range e.states {
		s := &e.states[i]
		frag += s.Frag(e.classes, e.shapes, e.fbuf)
		for j := range s.GPUs {
			idle += float64(s.FreeMilli(j, e.shapes))
		}
	}
	if idle == 0 {
		return 0
	}
	return 100 * frag / idle
}

// Run replays the trace for every scorer and seed.
func Run(ctx context.Context, tr *Trace, o Options) (*Report, error) {
	if o.Publish == nil {
		return nil, fmt.Errorf("no publisher")
	}
	if err := checkArrival(o.Arrival); err != nil {
		return nil, err
	}
	if o.MaxLoad <= 0 {
		return nil, fmt.Errorf("max load %v must be positive", o.MaxLoad)
	}
	if o.MaxPods > 0 && o.MaxPods < len(tr.Pods) {
		cut := *tr
		cut.Pods = tr.Pods[:o.MaxPods]
		tr = &cut
	}
	pub, err := publish(tr.Nodes, o.Publish)
	if err != nil {
		return nil, err
	}
	if pub.gpus == 0 {
		return nil, fmt.Errorf("trace %s has no GPUs", tr.Name)
	}
	classes := typicalClasses(tr.Pods, pub.shapes)
	type job struct {
		scorer Scorer
		seed   int64
	}
	var jobs []job
	for _, name := range o.Scorers {
		s, err := NewScorer(name)
		if err != nil {
			return nil, err
		}
		for _, seed := range o.Seeds {
			jobs = append(jobs, job{s, seed})
		}
	}
	mem := startMemWatch()
	t0 := time.Now()
	results, err := runJobs(len(jobs), o.Parallel, func(i int) (SeedResult, error) {
		return runSeed(ctx, pub, tr, classes, jobs[i].scorer, jobs[i].seed, o)
	}, func(r SeedResult) {
		progress(o.Progress, "sim: %-8s seed %d: %.2f%% allocated at %d%% load, %d pods, %.1fs\n",
			r.Scorer, r.Seed, r.Curve[len(r.Curve)-1], len(r.Curve)-1, r.Arrived, r.Wall.Seconds())
	})
	wall := time.Since(t0)
	peak, sys := mem.stop()
	if err != nil {
		return nil, err
	}
	return newReport(tr, pub.gpus, o, results, wall, peak, sys), nil
}

// memWatch samples the heap to find its peak during a run.
type memWatch struct {
	done chan struct{}
	out  chan [2]uint64
}

func startMemWatch() *memWatch {
	w := &memWatch{done: make(chan struct{}), out: make(chan [2]uint64)}
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-w.done:
				w.out <- [2]uint64{peak, ms.Sys}
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *memWatch) stop() (peakHeap, sys uint64) {
	close(w.done)
	r := <-w.out
	return r[0], r[1]
}
