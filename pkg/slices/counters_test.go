package slices_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

func counterNames(t *testing.T, ss []*resourceapi.ResourceSlice) []string {
	t.Helper()
	for _, s := range ss {
		if len(s.Spec.SharedCounters) > 0 {
			return slices.Sorted(maps.Keys(s.Spec.SharedCounters[0].Counters))
		}
	}
	t.Fatal("no counter set published")
	return nil
}

// with1gAt7 adds a 1g placement at memory slice 7: eight 1g would then pass
// the memory-slice counters on a GPU with seven compute slices.
func with1gAt7(g *inventory.GPU) {
	mig := *g.MIG
	mig.Profiles = slices.Clone(mig.Profiles)
	p := &mig.Profiles[0]
	p.Placements = append(slices.Clone(p.Placements), inventory.MIGPlacement{Start: 7, Size: 1})
	g.MIG = &mig
}

func TestCounterSet(t *testing.T) {
	memorySlices := []string{"memory-slice-0", "memory-slice-1", "memory-slice-2", "memory-slice-3", "memory-slice-4", "memory-slice-5", "memory-slice-6", "memory-slice-7"}
	tests := map[string]struct {
		gpu  inventory.GPU
		opts tslices.Options
		want []string
	}{
		// Every set of non-overlapping placements uses at most 7 compute
		// slices: memory-slice counters alone are exact.
		"H200":            {gpu: tierratest.H200(0, tierratest.WithMIG(true)), want: memorySlices},
		"A100":            {gpu: tierratest.A100(0, tierratest.WithMIG(true)), want: memorySlices},
		"B200":            {gpu: tierratest.B200(0, tierratest.WithMIG(true)), want: memorySlices},
		"H200 with +me":   {gpu: tierratest.H200(0, tierratest.WithMIG(true)), opts: tslices.Options{MediaExtensions: true}, want: append([]string{"media-extensions"}, memorySlices...)},
		"1g at 7 as well": {gpu: tierratest.H200(0, tierratest.WithMIG(true), with1gAt7), want: append([]string{"compute-slices"}, memorySlices...)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ss := build(t, inventory.Machine{GPUs: []inventory.GPU{tc.gpu}}, nil, tierratest.StandardPolicy(), tc.opts)
			assert.Equal(t, tc.want, counterNames(t, ss))
		})
	}
}

func TestComputeCounterRefusesTheEighth1g(t *testing.T) {
	m := inventory.Machine{GPUs: []inventory.GPU{tierratest.H200(0, tierratest.WithMIG(true), with1gAt7)}}
	var steps []step
	for i := range 7 {
		steps = append(steps, step{mig(fmt.Sprintf("c%d", i), "1g.18gb"), []string{fmt.Sprintf("gpu-0-1g-18gb-%d", i)}})
	}
	steps = append(steps, step{mig("c7", "1g.18gb"), nil})
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, m, nil, tierratest.StandardPolicy(), f)
	}, steps)
}

func TestOneMediaExtensionsSlicePerGPU(t *testing.T) {
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		classes := newCluster(t, oneMIGH200(1), nil, tierratest.StandardPolicy(), f).Classes
		c := tierratest.NewCluster(build(t, oneMIGH200(1), nil, tierratest.StandardPolicy(), tslices.Options{MediaExtensions: true}))
		c.Classes, c.Features = classes, f
		return c
	}, []step{
		{mig("a", "1g.18gb+me"), []string{"gpu-0-1g-18gb-me-0"}},
		{mig("b", "1g.18gb+me"), nil},
		{mig("c", "1g.18gb"), []string{"gpu-0-1g-18gb-1"}},
	})
}
