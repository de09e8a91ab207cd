package score

import (
	"cmp"
	"slices"
	"strings"
)

// Typical is one pod shape of the target workload FGD measures
// fragmentation against.
type Typical struct {
	MilliCPU int64 `json:"milliCPU"`
	// Memory is the pod's host memory in bytes (0: unknown). FGD's typical
	// pods have none; the yield scorer checks it.
	Memory int64 `json:"memory,omitempty"`
	// Milli is the share of each GPU in thousandths; Num how many GPUs.
	Milli int64 `json:"gpuMilli"`
	Num   int   `json:"numGPU"`
	// Products are the GPU products the pod may use; empty means any.
	Products []string `json:"products,omitempty"`
	// Weight is how often the workload asks for this shape.
	Weight float64 `json:"weight"`
	// Spec breaks ties between equally popular shapes (the trace's
	// gpu_spec); it need not be set.
	Spec string `json:"-"`
}

// Popularity settings of FGD's typical pods: the most frequent GPU request
// shapes, taken 10 at a time until they cover 60% of the GPU pods.
const (
	TypicalPopularity = 0.60
	TypicalStep       = 10
)

// MostPopular is FGD's target workload: the pods (weight 1 where unset) grouped by
// (cpu, share, count, spec), the most popular covering 60% of them, weights
// renormalised to sum to 1; a group's memory is its pods' mean. CPU-only
// pods are left out (FGD counts them, but they add the same to every
// node's fragmentation growth).
func MostPopular(pods []Typical) []Typical {
	type key struct {
		cpu, milli int64
		num        int
		spec       string
	}
	counts, mem := map[key]float64{}, map[key]float64{}
	first := map[key]Typical{}
	var total float64
	for _, p := range pods {
		if p.Num == 0 {
			continue
		}
		k := key{p.MilliCPU, p.Milli, p.Num, p.Spec}
		if _, ok := first[k]; !ok {
			first[k] = p
		}
		w := p.Weight
		if w <= 0 {
			w = 1
		}
		counts[k] += w
		mem[k] += w * float64(p.Memory)
		total += w
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
	var out []Typical
	var covered float64
	for i := 0; i < len(keys) && covered < TypicalPopularity*total; {
		for end := min(i+TypicalStep, len(keys)); i < end; i++ {
			t := first[keys[i]]
			t.Weight = counts[keys[i]]
			t.Memory = int64(mem[keys[i]] / counts[keys[i]])
			out = append(out, t)
			covered += counts[keys[i]]
		}
	}
	for i := range out {
		out[i].Weight /= covered
	}
	return out
}

// Class is a typical pod resolved against a shape table.
type Class struct {
	Typical
	// Allowed[s] says whether the pod may use a GPU of shape s.
	Allowed []bool
}

// NewClasses resolves typical pods against the shape table.
func NewClasses(typical []Typical, shapes []Shape) []Class {
	out := make([]Class, len(typical))
	for i, t := range typical {
		out[i] = Class{Typical: t, Allowed: make([]bool, len(shapes))}
		for s, sh := range shapes {
			out[i].Allowed[s] = len(t.Products) == 0 || slices.Contains(t.Products, sh.Product)
		}
	}
	return out
}

// fragOf is FGD's expected GPU fragmentation of one node (in thousandths
// of a GPU): for each typical pod, the idle GPU share it could not use —
// every idle share when the pod cannot land on the node at all, otherwise
// the idle share of the GPUs it cannot use (too little left, or a product
// it does not run on). frees[j] is device j's idle share; devices on MIG
// GPUs are left to mig.
func fragOf(classes []Class, h hostLeft, frees []int64, n *Node, mig *migView) float64 {
	var total int64
	for j, f := range frees {
		if !n.inMIG(j) {
			total += f
		}
	}
	if mig != nil {
		total += mig.idle
	}
	if total == 0 {
		return 0
	}
	var frag float64
	for i := range classes {
		c := &classes[i]
		if h.cpu < c.MilliCPU || (h.withMemory && h.memory < c.Memory) {
			frag += c.Weight * float64(total)
			continue
		}
		fit, small := 0, int64(0)
		for j, f := range frees {
			if n.inMIG(j) {
				continue
			}
			if c.Allowed[n.GPUs[j].Shape] && f >= c.Milli {
				fit++
			} else {
				small += f
			}
		}
		if mig != nil {
			f, s := mig.unusable(c)
			fit, small = fit+f, small+s
		}
		if fit >= c.Num {
			frag += c.Weight * float64(small)
		} else {
			frag += c.Weight * float64(total)
		}
	}
	return frag
}

// Frag is the node's expected fragmentation, cached until Changed.
func (n *Node) Frag(classes []Class, shapes []Shape, buf []int64) float64 {
	if n.fragOK {
		return n.frag
	}
	n.frag = n.FragWith(classes, shapes, buf, 0, nil)
	n.fragOK = true
	return n.frag
}

// FragWith is the node's fragmentation after hypothetically adding cpu and
// the picks.
func (n *Node) FragWith(classes []Class, shapes []Shape, buf []int64, cpu int64, picks []Pick) float64 {
	return n.fragAfter(classes, shapes, buf, hostLeft{cpu: n.MilliCPU - n.UsedMilliCPU - cpu}, picks)
}

// hostLeft is what a node has left of its host resources for the typical
// pods; memory counts only withMemory (FGD's fragmentation ignores it).
type hostLeft struct {
	cpu, memory int64
	withMemory  bool
}

// fragAfter is the node's fragmentation with h left and the picks taken.
func (n *Node) fragAfter(classes []Class, shapes []Shape, buf []int64, h hostLeft, picks []Pick) float64 {
	if len(n.GPUs) == 0 {
		return 0
	}
	buf = buf[:0]
	for j := range n.GPUs {
		if n.inMIG(j) {
			buf = append(buf, 0)
			continue
		}
		buf = append(buf, n.FreeMilli(j, shapes))
	}
	for _, p := range picks {
		if !n.inMIG(p.GPU) {
			buf[p.GPU] = max(0, buf[p.GPU]-p.Take)
		}
	}
	var mig *migView
	if n.hasMIG() {
		mig = n.migAfter(picks)
	}
	return fragOf(classes, h, buf, n, mig)
}
