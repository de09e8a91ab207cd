package validation

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

// The reshaping taint passes the apiserver's validation on every shape,
// and a plain slice over the 64 devices a slice with taints may hold is
// split rather than refused.
func TestTaintedSlicesPassAPIServerValidation(t *testing.T) {
	training := map[string]string{"tierra.dev/pool": "training"}
	tests := map[string]struct {
		machine inventory.Machine
		labels  map[string]string
	}{
		"MIG DGX H200":    {machine: tierratest.DGXH200(true)},
		"whole DGX H200":  {machine: tierratest.DGXH200(false), labels: training},
		"shared 4x L4":    {machine: tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i) })},
		"100 whole H200s": {machine: tierratest.Machine(100, func(i int) inventory.GPU { return tierratest.H200(i) }), labels: training},
		"MIG 16x H200":    {machine: migMachine(16, tierratest.H200)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dr, err := slices.Build(slices.Node{Name: "n", Labels: tc.labels, Machine: tc.machine}, tierratest.StandardPolicy())
			require.NoError(t, err)
			gpus := sets.New(tc.machine.GPUs[0].UUID, tc.machine.GPUs[len(tc.machine.GPUs)-1].UUID)
			tainted := slices.ResourceSlices("n", slices.Taint(dr, gpus, slices.ReshapingTaint()))
			n := 0
			for _, s := range tainted {
				assert.Empty(t, validateSlice(t, s), s.Name)
				for _, d := range s.Spec.Devices {
					if len(d.Taints) > 0 {
						n++
					}
				}
			}
			assert.NotZero(t, n, "something is tainted")
		})
	}
}

// TestTaintSplitIsNeeded: the same 100-device slice with one tainted device
// and no split is refused.
func TestTaintSplitIsNeeded(t *testing.T) {
	m := tierratest.Machine(100, func(i int) inventory.GPU { return tierratest.H200(i) })
	dr, err := slices.Build(slices.Node{Name: "n", Labels: map[string]string{"tierra.dev/pool": "training"}, Machine: m}, tierratest.StandardPolicy())
	require.NoError(t, err)
	published := slices.ResourceSlices("n", dr)
	require.Len(t, published, 1)
	s := published[0].DeepCopy()
	s.Spec.Devices[0].Taints = append(s.Spec.Devices[0].Taints, slices.ReshapingTaint())
	errs := validateSlice(t, s)
	require.NotEmpty(t, errs)
	assert.Contains(t, errs.ToAggregate().Error(), "64")
}
