package fidelity

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/tierra-gpu/tierra/pkg/sim"
)

// sampleNodes picks n nodes, taking the GPU models in turn so that the
// subset mixes models and GPU counts.
func sampleNodes(nodes []sim.Node, n int, rng *rand.Rand) []sim.Node {
	byModel := map[string][]sim.Node{}
	for _, nd := range nodes {
		byModel[nd.Model] = append(byModel[nd.Model], nd)
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		list := byModel[m]
		rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	}
	var out []sim.Node
	for k := 0; len(out) < n; k++ {
		added := false
		for _, m := range models {
			if k < len(byModel[m]) && len(out) < n {
				out = append(out, byModel[m][k])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

// cell is one independent comparison: a node subset, its published
// fixture, and a pod sequence overloading it. Cells run side by side in one
// cluster, each pod pinned to its cell by a node selector, so that the
// aggregate over cells has less of the tie-break noise one cell has.
type cell struct {
	name  string
	nodes []sim.Node
	pods  []sim.Pod
	fix   *sim.Fixture
}

// makeCells samples n disjoint cells of size nodes each.
func makeCells(allNodes []sim.Node, allPods []sim.Pod, n, size int, loadFactor float64, rng *rand.Rand) ([]cell, error) {
	pool := append([]sim.Node(nil), allNodes...)
	cells := make([]cell, n)
	for c := range cells {
		nodes := sampleNodes(pool, size, rng)
		used := map[string]bool{}
		for _, nd := range nodes {
			used[nd.Name] = true
		}
		rest := pool[:0:0]
		for _, nd := range pool {
			if !used[nd.Name] {
				rest = append(rest, nd)
			}
		}
		pool = rest
		fix, err := sim.NewFixture(nodes, sim.SlicesPublisher)
		if err != nil {
			return nil, fmt.Errorf("cell %d: %w", c, err)
		}
		name := fmt.Sprintf("c%d", c)
		target := int64(loadFactor * float64(fix.GPUs()) * 1000)
		cells[c] = cell{name: name, nodes: nodes, pods: sim.SamplePods(allPods, nodes, target, name, rng), fix: fix}
	}
	return cells, nil
}
