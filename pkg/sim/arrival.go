package sim

import (
	"fmt"
	mathrand "math/rand"
	"sort"
)

// Arrival generators: how a seed turns the trace into the pods that arrive.
const (
	// ArrivalFGD reproduces FGD's simulator (hkust-adsl/
	// kubernetes-scheduler-simulator, the artifact's --shuffle-pod=true
	// -tune 1.3 -tuneseed <seed> runs): the trace's pods sorted by name and
	// shuffled, then pods resampled from the name-sorted trace appended
	// until the next one would pass the target.
	ArrivalFGD = "fgd"
	// ArrivalLegacy is this simulator's first generator: the trace's pods
	// and the resampled ones shuffled together.
	ArrivalLegacy = "legacy"
)

// ArrivalNames lists the arrival generators, the default first.
func ArrivalNames() []string { return []string{ArrivalFGD, ArrivalLegacy} }

func checkArrival(name string) error {
	switch name {
	case "", ArrivalFGD, ArrivalLegacy:
		return nil
	}
	return fmt.Errorf("unknown arrival generator %q (known: %s, %s)", name, ArrivalFGD, ArrivalLegacy)
}

// fgdWorkload is FGD's arrival order for one seed, with FGD's random
// numbers: one math/rand source seeded with the seed (FGD's rand.Seed),
// whose first Int63 goes to a log line (FGD evaluates rand.Int() as a
// debug-log argument before anything else draws); then the pods, sorted by
// name, are shuffled with rand.Shuffle; then FGD's workload tuning to
// maxLoad x capacity (thousandths of a GPU): below it, while the next pod
// drawn by rand.Intn from the name-sorted trace would not pass the target,
// it is appended. FGD's stop test adds the drawn pod's per-GPU share
// (gpu_milli, not gpu_milli x num_gpu) to the total so far, which counts
// whole requests, and stops at the first pod that passes; a CPU-only pod
// never stops it. A trace already above the target loses pods drawn at
// random from the shuffled list until it is not.
//
// What FGD also draws from the same source afterwards (a random name
// prefix per node, the scheduler's tie-breaks) is not reproduced: the
// simulator breaks ties with its own generator.
func fgdWorkload(pods []Pod, maxLoad float64, capacity int64, seed int64) []Pod {
	sorted := make([]Pod, len(pods))
	copy(sorted, pods)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	rng := mathrand.New(mathrand.NewSource(seed))
	_ = rng.Int()
	out := make([]Pod, len(sorted), len(sorted)+len(sorted)/2)
	copy(out, sorted)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	var total int64
	for _, p := range sorted {
		total += p.GPURequest()
	}
	target := maxLoad * float64(capacity)
	switch {
	case len(sorted) == 0 || float64(total) == target:
		return out
	case float64(total) > target:
		for float64(total) > target && len(out) > 0 {
			i := rng.Intn(len(out))
			total -= out[i].GPURequest()
			out = append(out[:i], out[i+1:]...)
		}
		return out
	}
	for {
		p := sorted[rng.Intn(len(sorted))]
		if float64(total+p.GPUMilli) > target {
			return out
		}
		total += p.GPURequest()
		out = append(out, p)
	}
}
