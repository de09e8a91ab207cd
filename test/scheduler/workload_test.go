package scheduler

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/tierra-gpu/tierra/pkg/sim"
)

// cell is one independent comparison: a node subset and a pod sequence
// overloading it, run once per scheduler on its own copy of the nodes.
type cell struct {
	name  string
	nodes []sim.Node
	pods  []sim.Pod
}

// copyOf is the cell with its nodes and pods renamed for one scheduler.
func (c cell) copyOf(prefix string) cell {
	out := cell{name: prefix + c.name, nodes: make([]sim.Node, len(c.nodes)), pods: make([]sim.Pod, len(c.pods))}
	for i, n := range c.nodes {
		n.Name = prefix + n.Name
		out.nodes[i] = n
	}
	for i, p := range c.pods {
		p.Name = prefix + p.Name
		out.pods[i] = p
	}
	return out
}

// makeCells samples n disjoint cells of size nodes, mixing GPU models,
// each with trace pods (drawn without replacement) whose GPU requests
// reach loadFactor of the cell's GPUs.
func makeCells(allNodes []sim.Node, allPods []sim.Pod, n, size int, loadFactor float64, rng *rand.Rand) []cell {
	byModel := map[string][]sim.Node{}
	for _, nd := range allNodes {
		byModel[nd.Model] = append(byModel[nd.Model], nd)
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		l := byModel[m]
		rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	}
	next := map[string]int{}
	cells := make([]cell, n)
	for c := range cells {
		var nodes []sim.Node
		for len(nodes) < size {
			added := false
			for _, m := range models {
				if next[m] < len(byModel[m]) && len(nodes) < size {
					nodes = append(nodes, byModel[m][next[m]])
					next[m]++
					added = true
				}
			}
			if !added {
				break
			}
		}
		name := fmt.Sprintf("c%d", c)
		cells[c] = cell{name: name, nodes: nodes, pods: sim.SamplePods(allPods, nodes, int64(loadFactor*float64(gpusOf(nodes))*1000), name, rng)}
	}
	return cells
}

// allocated sums the placed pods' GPU requests, in thousandths of a GPU.
func allocated(pods []sim.Pod, placed []string) int64 {
	var sum int64
	for i, p := range pods {
		if placed[i] != "" {
			sum += p.GPURequest()
		}
	}
	return sum
}

func gpusOf(nodes []sim.Node) int64 {
	var n int64
	for _, nd := range nodes {
		n += int64(nd.GPUs)
	}
	return n
}
