package sim

import (
	"strings"

	"github.com/tierra-gpu/tierra/pkg/score"
)

// typicalClasses is FGD's target workload over the trace's GPU pods (see
// score.MostPopular), resolved against the published shapes.
func typicalClasses(pods []Pod, shapes []score.Shape) []score.Class {
	typical := make([]score.Typical, 0, len(pods))
	products := map[string][]string{}
	for _, p := range pods {
		if p.NumGPU == 0 {
			continue
		}
		spec := strings.Join(p.GPUSpec, "|")
		prods, ok := products[spec]
		if !ok {
			for _, m := range p.GPUSpec {
				prods = append(prods, modelProduct(m))
			}
			products[spec] = prods
		}
		typical = append(typical, score.Typical{MilliCPU: p.MilliCPU, Memory: p.MemoryMiB << 20, Milli: p.GPUMilli, Num: p.NumGPU, Products: prods, Spec: spec})
	}
	return score.NewClasses(score.MostPopular(typical), shapes)
}

// TypicalPods is the trace's FGD target workload as the scheduler plugin
// takes it in its arguments (score.Typical, weights summing to 1).
func TypicalPods(pods []Pod) []score.Typical {
	classes := typicalClasses(pods, nil)
	out := make([]score.Typical, len(classes))
	for i, c := range classes {
		out[i] = c.Typical
	}
	return out
}

// learnEvery is how many arrivals the online typical pods are relearnt
// after.
const learnEvery = 256

// learn records an arrival and, every learnEvery of them (and at the
// first), relearns the typical pods from the arrivals so far. Until the
// first GPU pod arrives there are none: the scorers rank by fragmentation
// zero, then their tie-breaks.
func (e *env) learn(p Pod) {
	e.seen = append(e.seen, p)
	if len(e.seen) != 1 && len(e.seen)%learnEvery != 0 {
		return
	}
	e.classes = typicalClasses(e.seen, e.shapes)
	for i := range e.states {
		e.states[i].Changed()
	}
}
