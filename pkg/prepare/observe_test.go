package prepare_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestObserverSeesEveryStep(t *testing.T) {
	var mu sync.Mutex
	counts := map[prepare.Step]int{}
	observe := func(step prepare.Step, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		counts[step]++
		assert.Positive(t, took, "step %s", step)
	}
	e := newEnv(t, v1alpha1.TierInference, namespaces{}, func(o *prepare.Options) { o.Observe = observe })
	claim := e.allocate(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-infer"))
	// Prepare: started, MIG recorded, prepared; unprepare: started, delete.
	assert.Equal(t, map[prepare.Step]int{
		prepare.StepTenant: 1, prepare.StepCheckpoint: 5, prepare.StepNVML: 2, prepare.StepCDI: 2,
	}, counts)
}
