package slices_test

// Allocator conformance: published slices + rendered classes + claims
// through k8s.io/dynamic-resource-allocation/structured, the allocator
// kube-scheduler runs, with its default feature set (incubating allocator)
// and with the alpha features on (experimental allocator).

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

var featureSets = map[string]structured.Features{"scheduler-1.37": tierratest.SchedulerFeatures, "alpha": tierratest.AlphaFeatures}

// step is one claim and the devices it must get (nil: refused).
type step struct {
	claim *resourceapi.ResourceClaim
	want  []string
}

func newCluster(t *testing.T, m inventory.Machine, labels map[string]string, policy *v1alpha1.TierPolicy, f structured.Features) *tierratest.Cluster {
	t.Helper()
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	c := tierratest.NewCluster(build(t, m, labels, policy), classes...)
	c.Features = f
	return c
}

func runSteps(t *testing.T, newC func(*testing.T, structured.Features) *tierratest.Cluster, steps []step) {
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			c := newC(t, f)
			for i, s := range steps {
				got, err := c.Allocate(context.Background(), nodeName, s.claim)
				require.NoError(t, err)
				assert.Equal(t, s.want, got, "step %d (%s)", i, s.claim.Name)
			}
		})
	}
}

func profileIs(p string) string {
	return fmt.Sprintf(`has(device.attributes["gpu.tierra.dev"].migProfile) && device.attributes["gpu.tierra.dev"].migProfile == %q`, p)
}

func mig(name, profile string, cel ...string) *resourceapi.ResourceClaim {
	w := tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName("inference")).Selector(profileIs(profile))
	for _, e := range cel {
		w = w.Selector(e)
	}
	return w.Obj()
}

func oneMIGH200(n int) inventory.Machine {
	return tierratest.Machine(n, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
}

func TestMIGExclusivityThroughCounters(t *testing.T) {
	at0 := `device.attributes["gpu.tierra.dev"].migPlacementStart == 0`
	tests := map[string][]step{
		"two 3g fit, a third is refused": {
			{mig("a", "3g.71gb"), []string{"gpu-0-3g-71gb-4"}},
			{mig("b", "3g.71gb"), []string{"gpu-0-3g-71gb-0"}},
			{mig("c", "3g.71gb"), nil},
			{mig("d", "1g.18gb"), nil},
		},
		"3g at 0 blocks 7g and 4g, not 3g at 4": {
			{mig("a", "3g.71gb", at0), []string{"gpu-0-3g-71gb-0"}},
			{mig("b", "7g.141gb"), nil},
			{mig("c", "4g.71gb"), nil},
			{mig("d", "2g.35gb"), []string{"gpu-0-2g-35gb-4"}},
			{mig("e", "1g.35gb"), []string{"gpu-0-1g-35gb-6"}},
			{mig("f", "1g.18gb"), nil},
		},
		"1g from the bottom, 3g keeps the top": {
			{mig("a", "1g.18gb"), []string{"gpu-0-1g-18gb-0"}},
			{mig("b", "1g.18gb"), []string{"gpu-0-1g-18gb-1"}},
			{mig("c", "1g.18gb"), []string{"gpu-0-1g-18gb-2"}},
			{mig("d", "4g.71gb"), nil},
			{mig("e", "3g.71gb"), []string{"gpu-0-3g-71gb-4"}},
			{mig("f", "1g.18gb"), []string{"gpu-0-1g-18gb-3"}},
			{mig("g", "1g.18gb"), nil},
			{mig("h", "1g.35gb"), nil},
		},
		"seven 1g fill a GPU, then nothing": append(func() []step {
			var s []step
			for i := range 7 {
				s = append(s, step{mig(fmt.Sprintf("c%d", i), "1g.18gb"), []string{fmt.Sprintf("gpu-0-1g-18gb-%d", i)}})
			}
			return s
		}(), step{mig("x", "1g.18gb"), nil}, step{mig("y", "1g.35gb"), nil}),
		"7g takes the GPU": {
			{mig("a", "7g.141gb"), []string{"gpu-0-7g-141gb-0"}},
			{mig("b", "1g.18gb"), nil},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
				return newCluster(t, oneMIGH200(1), nil, tierratest.StandardPolicy(), f)
			}, steps)
		})
	}
}

func TestMIGPacksPartiallyUsedGPUsFirst(t *testing.T) {
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, oneMIGH200(2), nil, tierratest.StandardPolicy(), f)
	}, []step{
		{mig("a", "1g.18gb"), []string{"gpu-0-1g-18gb-0"}},
		{mig("b", "3g.71gb"), []string{"gpu-0-3g-71gb-4"}},
		{mig("c", "7g.141gb"), []string{"gpu-1-7g-141gb-0"}},
		{mig("d", "2g.35gb"), []string{"gpu-0-2g-35gb-2"}},
		{mig("e", "1g.18gb"), []string{"gpu-0-1g-18gb-1"}},
		{mig("f", "1g.35gb"), nil},
		{mig("g", "1g.18gb"), nil},
	})
}

func TestFirstAvailablePicksTheCheapestThatFits(t *testing.T) {
	mem30 := `device.capacity["gpu.tierra.dev"].memory.compareTo(quantity("30Gi")) >= 0`
	ladder := func(name string, sel ...string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").FirstAvailable("gpu",
			tierratest.Sub("1g", tiers.ClassMIG, append([]string{profileIs("1g.18gb")}, sel...)...),
			tierratest.Sub("2g", tiers.ClassMIG, append([]string{profileIs("2g.35gb")}, sel...)...),
			tierratest.Sub("whole", tiers.ClassGPU, sel...),
		).Obj()
	}
	// GPU 0 is in MIG mode, GPU 1 is not: the inference tier publishes it whole.
	m := inventory.Machine{GPUs: []inventory.GPU{tierratest.H200(0, tierratest.WithMIG(true)), tierratest.H200(1)}}
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, m, nil, tierratest.StandardPolicy(), f)
	}, []step{
		{ladder("small"), []string{"gpu-0-1g-18gb-0"}},
		{ladder("needs-30gi", mem30), []string{"gpu-0-2g-35gb-2"}},
		{mig("big", "3g.71gb"), []string{"gpu-0-3g-71gb-4"}},
		{ladder("no-slice-left", mem30), []string{"gpu-1"}},
		{ladder("last-1g"), []string{"gpu-0-1g-18gb-1"}},
		{ladder("nothing-left"), nil},
	})
}

func TestMatchAttributeNVLinkDomain(t *testing.T) {
	two := tierratest.Machine(8, func(i int) inventory.GPU {
		return tierratest.H200(i, tierratest.WithNVLink(fmt.Sprintf("nvl-%d", i/4)))
	})
	four := func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpus", tiers.ClassName("training")).Count(4).
			MatchAttribute(tslices.AttrNVLinkDomain).Obj()
	}
	one := func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName("training")).Obj()
	}
	tests := map[string][]step{
		"lands inside one domain": {
			{one("a"), []string{"gpu-0"}},
			{four("b"), []string{"gpu-4", "gpu-5", "gpu-6", "gpu-7"}},
			{four("c"), nil},
			{one("d"), []string{"gpu-1"}},
		},
		"fails when no domain has four free": {
			{one("a"), []string{"gpu-0"}},
			{one("b"), []string{"gpu-1"}},
			{one("c"), []string{"gpu-2"}},
			{one("d"), []string{"gpu-3"}},
			{one("e"), []string{"gpu-4"}},
			{four("f"), nil},
		},
		"two fill the node": {
			{four("a"), []string{"gpu-0", "gpu-1", "gpu-2", "gpu-3"}},
			{four("b"), []string{"gpu-4", "gpu-5", "gpu-6", "gpu-7"}},
			{one("c"), nil},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
				return newCluster(t, two, trainingLabels, tierratest.StandardPolicy(), f)
			}, steps)
		})
	}
}

func TestSharedCapacityThroughTierClass(t *testing.T) {
	share := func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName("dev")).Capacity(tslices.CapMemory, "40Gi").Obj()
	}
	policy := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Obj()
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) }), nil, policy, f)
	}, []step{
		{share("a"), []string{"gpu-0"}},
		{share("b"), []string{"gpu-0"}},
		{share("c"), []string{"gpu-0"}},
		{share("d"), nil},
	})
}

func TestCELSelectorOnCost(t *testing.T) {
	m := inventory.Machine{GPUs: []inventory.GPU{tierratest.H200(0), tierratest.L4(1), tierratest.H200(2), tierratest.L4(3)}}
	cheap := func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassGPU).
			Selector(`device.attributes["gpu.tierra.dev"].costPerHour <= 1000000`).Obj()
	}
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, m, trainingLabels, tierratest.StandardPolicy(), f)
	}, []step{
		{cheap("a"), []string{"gpu-1"}},
		{cheap("b"), []string{"gpu-3"}},
		{cheap("c"), nil},
	})
}

// TestMIGByMemoryGetsTheSmallestAdequateSlice: a claim that asks for memory
// instead of naming a profile gets the first, i.e. smallest, slice with
// enough memory (1g.18gb is 17.5Gi on an H200).
func TestMIGByMemoryGetsTheSmallestAdequateSlice(t *testing.T) {
	byMem := func(name, mem string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassMIG).Capacity(tslices.CapMemory, mem).Obj()
	}
	runSteps(t, func(t *testing.T, f structured.Features) *tierratest.Cluster {
		return newCluster(t, oneMIGH200(1), nil, tierratest.StandardPolicy(), f)
	}, []step{
		{byMem("a", "10Gi"), []string{"gpu-0-1g-18gb-0"}},
		// 1g.35gb at 6 first: slice 7 is of no use to a 1g.18gb.
		{byMem("b", "20Gi"), []string{"gpu-0-1g-35gb-6"}},
		{byMem("c", "30Gi"), []string{"gpu-0-1g-35gb-2"}},
		{byMem("d", "100Gi"), nil},
		{byMem("e", "17Gi"), []string{"gpu-0-1g-18gb-1"}},
	})
}
