package yield

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// Args configure TierraYield (pluginConfig args in the
// KubeSchedulerConfiguration).
type Args struct {
	// Scorer is a pkg/score scorer: frag (default), yield (frag with the
	// host counted; it needs typical pods with milliCPU and memory) or
	// bestfit.
	Scorer string `json:"scorer,omitempty"`
	// Driver is whose devices are scored; default Tierra's.
	Driver string `json:"driver,omitempty"`
	// TypicalPods is the target workload fragmentation is measured against
	// (FGD's typical pods; pkg/sim.TypicalPods derives a trace's). Default:
	// whole GPUs (1, 2, 4 and 8) and shares of a half and a quarter GPU,
	// equally likely.
	TypicalPods []score.Typical `json:"typicalPods,omitempty"`
}

// DefaultTypicalPods is the target workload when the args name none.
func DefaultTypicalPods() []score.Typical {
	var out []score.Typical
	for _, t := range []struct {
		milli int64
		num   int
	}{{250, 1}, {500, 1}, {1000, 1}, {1000, 2}, {1000, 4}, {1000, 8}} {
		out = append(out, score.Typical{Milli: t.milli, Num: t.num, Weight: 1.0 / 6})
	}
	return out
}

func decodeArgs(obj runtime.Object) (Args, error) {
	var a Args
	if err := frameworkruntime.DecodeInto(obj, &a); err != nil {
		return a, fmt.Errorf("decode %s args: %w", Name, err)
	}
	if a.Scorer == "" {
		a.Scorer = score.Frag
	}
	if a.Driver == "" {
		a.Driver = slices.DriverName
	}
	if len(a.TypicalPods) == 0 {
		a.TypicalPods = DefaultTypicalPods()
	}
	return a, nil
}
