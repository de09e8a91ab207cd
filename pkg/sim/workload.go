package sim

import "math/rand/v2"

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
