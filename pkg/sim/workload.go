package sim

import (
	"fmt"
	"math/rand/v2"
)

// growWorkload is FGD's workload inflation: the trace's pods plus pods
// resampled from it (with replacement) until the GPU requests reach
// target thousandths of a GPU, all shuffled. The caller stops feeding pods
// once the arrived requests reach the target.
func growWorkload(pods []Pod, target int64, rng *rand.Rand) []Pod {
	out := make([]Pod, len(pods), len(pods)+len(pods)/2)
	copy(out, pods)
	var total int64
	for _, p := range pods {
		total += p.GPURequest()
	}
	for total < target && len(pods) > 0 {
		p := pods[rng.IntN(len(pods))]
		out = append(out, p)
		total += p.GPURequest()
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// SamplePods draws pods from the trace without replacement, in rng's
// order, until their GPU requests reach target thousandths of a GPU; pods
// asking for a GPU model none of the nodes has are left out (they would
// fail under every scheduler and say nothing). Each is renamed
// <prefix>-<nnnn>. The control-plane tests use it to give a node subset
// its own overloading workload.
func SamplePods(pods []Pod, nodes []Node, target int64, prefix string, rng *rand.Rand) []Pod {
	have := map[string]bool{}
	for _, n := range nodes {
		have[n.Model] = true
	}
	var out []Pod
	var total int64
	for _, i := range rng.Perm(len(pods)) {
		if total >= target {
			break
		}
		p := pods[i]
		if !anyModel(p.GPUSpec, have) {
			continue
		}
		p.Name = fmt.Sprintf("%s-%04d", prefix, len(out))
		out = append(out, p)
		total += p.GPURequest()
	}
	return out
}

func anyModel(spec []string, have map[string]bool) bool {
	if len(spec) == 0 {
		return true
	}
	for _, m := range spec {
		if have[m] {
			return true
		}
	}
	return false
}
