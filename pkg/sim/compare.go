package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// CompareOptions configure Compare.
type CompareOptions struct {
	Scorers  []string
	Seeds    []int64
	MaxLoad  float64
	Parallel int
	// Arrival is the arrival generator (ArrivalFGD when empty), as in Run.
	Arrival string
	// MaxPods, when positive, keeps only the trace's first MaxPods pods.
	MaxPods int
	// Progress receives one line per finished seed; nil for silence.
	Progress io.Writer
}

// TierSeed is what one tier served in one seed.
type TierSeed struct {
	Pods int `json:"pods"`
	// RequestedMilli sums the placed pods' GPU requests, HeldMilli the GPU
	// capacity their allocations hold (a MIG device its memory slices, a
	// whole GPU all of it, a share its compute), thousandths of a GPU.
	RequestedMilli int64 `json:"requestedMilli"`
	HeldMilli      int64 `json:"heldMilli"`
}

// PolicySeed is one scorer on one seed on one cluster.
type PolicySeed struct {
	Cluster string `json:"cluster"`
	Scorer  string `json:"scorer"`
	Seed    int64  `json:"seed"`
	// Curve[k] is the placed GPU requests (% of GPU capacity) when the
	// arrived requests first reached k% of capacity.
	Curve      []float64            `json:"curve"`
	Arrived    int                  `json:"arrivedPods"`
	Placed     int                  `json:"placedPods"`
	Failed     FailedPods           `json:"failed"`
	HeldMilli  int64                `json:"heldMilli"`
	Tiers      map[string]*TierSeed `json:"tiers"`
	Divergence int                  `json:"divergence"`
	Wall       time.Duration        `json:"wallNs"`
}

// Compare replays one workload on each cluster (one per TierPolicy, or a
// live cluster) with every scorer and seed: the same seed grows the same
// arrival sequence on every cluster, so the rows differ only by policy.
func Compare(ctx context.Context, clusters []*Cluster, tr *Trace, o CompareOptions) (*Comparison, error) {
	if o.MaxLoad <= 0 {
		return nil, fmt.Errorf("max load %v must be positive", o.MaxLoad)
	}
	if err := checkArrival(o.Arrival); err != nil {
		return nil, err
	}
	pods := tr.Pods
	if o.MaxPods > 0 && o.MaxPods < len(pods) {
		pods = pods[:o.MaxPods]
	}
	typical := TypicalPods(pods)
	type job struct {
		p      *prepared
		scorer string
		seed   int64
	}
	var jobs []job
	preps := make([]*prepared, len(clusters))
	for i, cl := range clusters {
		if cl.GPUs == 0 {
			return nil, fmt.Errorf("cluster %s has no GPUs", cl.Name)
		}
		p := prepare(cl, typical)
		preps[i] = p
		for _, s := range o.Scorers {
			if _, err := NewScorer(s); err != nil {
				return nil, err
			}
			for _, seed := range o.Seeds {
				jobs = append(jobs, job{p, s, seed})
			}
		}
	}
	results, err := runJobs(len(jobs), o.Parallel, func(i int) (PolicySeed, error) {
		return runPolicySeed(ctx, jobs[i].p, pods, jobs[i].scorer, jobs[i].seed, o)
	}, func(r PolicySeed) {
		progress(o.Progress, "sim: %-10s %-8s seed %d: %.2f%% allocated at %d%% load, %d pods, %.1fs\n",
			r.Cluster, r.Scorer, r.Seed, r.Curve[len(r.Curve)-1], len(r.Curve)-1, r.Arrived, r.Wall.Seconds())
	})
	if err != nil {
		return nil, err
	}
	return newComparison(tr.Name, preps, results, o), nil
}

// runPolicySeed replays one grown workload with one scorer on a cluster.
func runPolicySeed(ctx context.Context, p *prepared, pods []Pod, scorerName string, seed int64, o CompareOptions) (PolicySeed, error) {
	t0 := time.Now()
	scorer, err := NewScorer(scorerName)
	if err != nil {
		return PolicySeed{}, err
	}
	e := newPolicyEnv(p, scorer, seed)
	maxLoad := o.MaxLoad
	capacity := int64(p.cl.GPUs) * 1000
	target := int64(maxLoad * float64(capacity))
	// The same arrivals as Run's for the seed, whatever the cluster.
	var grown []Pod
	if o.Arrival == ArrivalLegacy {
		grown = growWorkload(pods, target, rand.New(rand.NewPCG(uint64(seed), 0x7469657272)))
	} else {
		grown = fgdWorkload(pods, maxLoad, capacity, seed)
	}
	st := PolicySeed{Cluster: p.cl.Name, Scorer: scorerName, Seed: seed, Failed: FailedPods{Whole: map[int]int{}}, Tiers: map[string]*TierSeed{}}
	for _, t := range p.cl.Tiers {
		st.Tiers[t.Name] = &TierSeed{}
	}
	maxK := int(maxLoad*100 + 0.5)
	curve := make([]float64, 0, maxK+1)
	var arrived, placed int64
	for _, pod := range grown {
		if arrived >= target && len(curve) > maxK {
			break
		}
		if err := ctx.Err(); err != nil {
			return PolicySeed{}, fmt.Errorf("cluster %s seed %d: %w", p.cl.Name, seed, err)
		}
		arrived += pod.GPURequest()
		st.Arrived++
		held, err := e.place(ctx, pod)
		if err != nil {
			return PolicySeed{}, fmt.Errorf("cluster %s seed %d pod %s: %w", p.cl.Name, seed, pod.Name, err)
		}
		if held == nil {
			st.Failed.add(pod)
		} else {
			st.Placed++
			placed += pod.GPURequest()
			st.book(pod, held)
		}
		for len(curve) <= maxK && arrived*100 >= int64(len(curve))*capacity {
			curve = append(curve, 100*float64(placed)/float64(capacity))
		}
	}
	// FGD's workload stops just short of the target: its last point
	// stands for the target's, as in Run.
	for len(curve) <= maxK && len(curve) > 0 {
		curve = append(curve, 100*float64(placed)/float64(capacity))
	}
	st.Curve = curve
	st.Divergence = e.stats.Divergence
	st.Wall = time.Since(t0)
	return st, nil
}

// book records a placed pod under the tiers its allocation took.
func (st *PolicySeed) book(pod Pod, held map[string]int64) {
	var total int64
	for _, m := range held {
		total += m
	}
	for tier, m := range held {
		t := st.Tiers[tier]
		if t == nil {
			t = &TierSeed{}
			st.Tiers[tier] = t
		}
		t.Pods++
		t.HeldMilli += m
		if total > 0 {
			t.RequestedMilli += pod.GPURequest() * m / total
		}
		st.HeldMilli += m
	}
}
