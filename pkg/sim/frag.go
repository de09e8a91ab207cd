package sim

import (
	"cmp"
	"slices"
	"strings"
)

// fragClass is one "typical pod" of FGD: a request shape and how often the
// target workload asks for it.
type fragClass struct {
	cpu     int64
	milli   int64
	num     int
	allowed []bool // per GPU shape
	p       float64
}

// Popularity settings of FGD's typical pods: the most frequent GPU request
// shapes, taken 10 at a time until they cover 60% of the GPU pods.
const (
	typicalPopularity = 0.60
	typicalStep       = 10
)

// typicalClasses is FGD's target workload: GPU pods grouped by (cpu,
// gpu_milli, num_gpu, gpu_spec), the most popular covering 60% of them,
// probabilities renormalised. CPU-only pods are left out as in FGD.
func typicalClasses(pods []Pod, shapes []shape) []fragClass {
	type key struct {
		cpu, milli int64
		num        int
		spec       string
	}
	counts := map[key]int{}
	specs := map[key][]string{}
	total := 0
	for _, p := range pods {
		if p.NumGPU == 0 {
			continue
		}
		k := key{p.MilliCPU, p.GPUMilli, p.NumGPU, strings.Join(p.GPUSpec, "|")}
		counts[k]++
		specs[k] = p.GPUSpec
		total++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.num, b.num), cmp.Compare(a.milli, b.milli), cmp.Compare(a.cpu, b.cpu), strings.Compare(a.spec, b.spec))
	})
	var out []fragClass
	covered := 0
	for i := 0; i < len(keys) && float64(covered) < typicalPopularity*float64(total); {
		for end := min(i+typicalStep, len(keys)); i < end; i++ {
			k := keys[i]
			fc := fragClass{cpu: k.cpu, milli: k.milli, num: k.num, p: float64(counts[k])}
			for _, sh := range shapes {
				fc.allowed = append(fc.allowed, len(specs[k]) == 0 || containsProduct(specs[k], sh.product))
			}
			out = append(out, fc)
			covered += counts[k]
		}
	}
	for i := range out {
		out[i].p /= float64(covered)
	}
	return out
}

// fragOf is FGD's expected GPU fragmentation of one node (in thousandths
// of a GPU): for each typical pod, the idle GPU share it could not use —
// every idle share when the pod cannot land on the node at all, otherwise
// the GPUs with less left than the pod's per-GPU share.
func fragOf(classes []fragClass, cpuLeft int64, frees []int64, shape int) float64 {
	var total int64
	for _, f := range frees {
		total += f
	}
	if total == 0 {
		return 0
	}
	var frag float64
	for i := range classes {
		c := &classes[i]
		if !c.allowed[shape] || cpuLeft < c.cpu {
			frag += c.p * float64(total)
			continue
		}
		fit, small := 0, int64(0)
		for _, f := range frees {
			if f >= c.milli {
				fit++
			} else {
				small += f
			}
		}
		if fit >= c.num {
			frag += c.p * float64(small)
		} else {
			frag += c.p * float64(total)
		}
	}
	return frag
}

// nodeFrag is fragOf for a node's current state, cached until it changes.
func (s *nodeState) nodeFrag(classes []fragClass, shapes []shape, buf []int64) float64 {
	if s.fragOK {
		return s.frag
	}
	s.frag = s.fragWith(classes, shapes, buf, 0, nil, 0)
	s.fragOK = true
	return s.frag
}

// fragWith is the node's fragmentation after hypothetically adding cpu and
// taking `take` thousandths from each GPU in picked.
func (s *nodeState) fragWith(classes []fragClass, shapes []shape, buf []int64, cpu int64, picked []int, take int64) float64 {
	if len(s.gpus) == 0 {
		return 0
	}
	buf = buf[:0]
	for j := range s.gpus {
		buf = append(buf, s.freeMilli(j, shapes))
	}
	for _, j := range picked {
		buf[j] = max(0, buf[j]-take)
	}
	return fragOf(classes, s.trace.MilliCPU-s.cpuUsed-cpu, buf, s.gpus[0].shape)
}
