package slices_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// taintedCluster publishes the machine with the reshaping taint on the
// GPUs of the given indexes.
func taintedCluster(m inventory.Machine, labels map[string]string, policy *v1alpha1.TierPolicy, tainted ...int) func(*testing.T, structured.Features) *tierratest.Cluster {
	return func(t *testing.T, f structured.Features) *tierratest.Cluster {
		gpus := sets.New[string]()
		for _, i := range tainted {
			gpus.Insert(m.GPUs[i].UUID)
		}
		dr := tslices.Taint(buildResources(t, m, labels, policy), gpus, tslices.ReshapingTaint())
		classes, err := tiers.Render(policy)
		require.NoError(t, err)
		c := tierratest.NewCluster(tslices.ResourceSlices(nodeName, dr), classes...)
		c.Features = f
		return c
	}
}

// The scheduler's allocator gives a reshaping GPU's devices only to a claim
// that tolerates the taint; the node's other GPUs stay allocatable.
func TestTaintedGPUIsNotAllocated(t *testing.T) {
	onGPU := func(i string) string { return `device.attributes["gpu.tierra.dev"].index == ` + i }
	whole := func(name string, cel ...string) *tierratest.ClaimWrapper {
		w := tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName(v1alpha1.TierTraining))
		for _, e := range cel {
			w = w.Selector(e)
		}
		return w
	}
	dev := func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).
			Capacity(tslices.CapCompute, "250").Selector(tslices.TenantSelector("research")).Obj()
	}
	h200s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.H200(i) })
	l4s := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) })
	tests := map[string]struct {
		cluster func(*testing.T, structured.Features) *tierratest.Cluster
		steps   []step
	}{
		"whole GPUs": {
			cluster: taintedCluster(h200s, trainingLabels, tierratest.StandardPolicy(), 0),
			steps: []step{
				{whole("on-0", onGPU("0")).Obj(), nil},
				{whole("any").Obj(), []string{"gpu-1"}},
				{whole("next").Obj(), nil},
				{whole("tolerates", onGPU("0")).Tolerate(tslices.ReshapingTaintKey).Obj(), []string{"gpu-0"}},
			},
		},
		"MIG devices": {
			cluster: taintedCluster(oneMIGH200(2), nil, tierratest.StandardPolicy(), 1),
			steps: []step{
				{mig("a", "7g.141gb"), []string{"gpu-0-7g-141gb-0"}},
				{mig("b", "7g.141gb"), nil},
				{mig("c", "1g.18gb"), nil},
			},
		},
		"tenant slots": {
			cluster: taintedCluster(l4s, nil, tenantPolicy(), 0),
			steps: []step{
				{dev("a"), deviceNames(build(t, l4s, nil, tenantPolicy()), tslices.AttrUUID, l4s.GPUs[1].UUID)[:1]},
				{dev("b"), deviceNames(build(t, l4s, nil, tenantPolicy()), tslices.AttrUUID, l4s.GPUs[1].UUID)[:1]},
			},
		},
		"nothing tainted": {
			cluster: taintedCluster(h200s, trainingLabels, tierratest.StandardPolicy()),
			steps:   []step{{whole("on-0", onGPU("0")).Obj(), []string{"gpu-0"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { runSteps(t, tc.cluster, tc.steps) })
	}
}
