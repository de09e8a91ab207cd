package allocator_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/structured"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const nodeName = "node-1"

var featureSets = map[string]structured.Features{"scheduler-1.37": allocator.SchedulerFeatures, "alpha": allocator.AlphaFeatures}

// healthCluster publishes m under policy with the tracker's taints, as the
// plugin does, into a cluster run by the scheduler's allocator.
func healthCluster(t *testing.T, f structured.Features, m inventory.Machine, labels map[string]string,
	policy *v1alpha1.TierPolicy, tracker *health.Tracker) *allocator.Cluster {
	t.Helper()
	dr, err := tslices.Build(tslices.Node{Name: nodeName, Labels: labels, Machine: m}, policy)
	require.NoError(t, err)
	dr = tslices.TaintDevices(dr, func(d resourceapi.Device) []resourceapi.DeviceTaint {
		hd := health.Device{GPU: tslices.DeviceGPU(d)}
		if pl, ok := tslices.DevicePlacement(d); ok {
			hd.Placement = &pl
		}
		return tracker.Taints(hd)
	})
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	c := allocator.NewCluster(tslices.ResourceSlices(nodeName, dr), classes...)
	c.Features = f
	return c
}

func allocate(t *testing.T, c *allocator.Cluster, claim *resourceapi.ResourceClaim) []string {
	t.Helper()
	got, err := c.Allocate(context.Background(), nodeName, claim)
	require.NoError(t, err)
	return got
}

func training(name string, n int64) *tierratest.ClaimWrapper {
	return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Count(n)
}

// XID 79 on GPU 2 of an 8-GPU node: an 8-GPU claim is refused, a 7-GPU one
// gets the other seven, a claim that tolerates the taint gets GPU 2; once
// the taint clears, the 8-GPU claim fits.
func TestTaintedGPUIsNotAllocatedUntilItClears(t *testing.T) {
	m := tierratest.Machine(8, func(i int) inventory.GPU { return tierratest.H200(i) })
	labels := map[string]string{"tierra.dev/pool": "training"}
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			clk := testingclock.NewFakeClock(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
			tracker := health.NewTracker(clk, nil)
			tracker.Observe(health.Event{GPU: m.GPUs[2].UUID, Kind: health.KindXID, XID: 79})

			c := healthCluster(t, f, m, labels, tierratest.StandardPolicy(), tracker)
			assert.Nil(t, allocate(t, c, training("eight", 8).Obj()), "8 GPUs with GPU 2 tainted")
			assert.Equal(t, []string{"gpu-0", "gpu-1", "gpu-3", "gpu-4", "gpu-5", "gpu-6", "gpu-7"},
				allocate(t, c, training("seven", 7).Obj()))
			assert.Nil(t, allocate(t, c, training("one", 1).Obj()), "only the tainted GPU is left")
			assert.Equal(t, []string{"gpu-2"}, allocate(t, c, training("tolerates", 1).Tolerate(health.XIDTaintKey).Obj()))

			clk.Step(v1alpha1.DefaultHealthQuietPeriod)
			require.Equal(t, []string{m.GPUs[2].UUID}, tracker.Expire())
			c = healthCluster(t, f, m, labels, tierratest.StandardPolicy(), tracker)
			assert.Len(t, allocate(t, c, training("eight", 8).Obj()), 8, "healed: all eight")
		})
	}
}

// A fault on a MIG instance keeps the overlapping placements from being
// allocated; disjoint placements of the same GPU still are.
func TestMIGInstanceFaultTaintsOverlappingPlacements(t *testing.T) {
	m := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	profile := func(p string) string {
		return `device.attributes["gpu.tierra.dev"].migProfile == "` + p + `"`
	}
	mig := func(name, p string) *tierratest.ClaimWrapper {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName(v1alpha1.TierInference)).Selector(profile(p))
	}
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			tracker := health.NewTracker(testingclock.NewFakeClock(time.Now()), nil)
			tracker.Observe(health.Event{GPU: m.GPUs[0].UUID, Kind: health.KindXID, XID: 94,
				Placement: &inventory.MIGPlacement{Start: 4, Size: 4}})
			c := healthCluster(t, f, m, nil, tierratest.StandardPolicy(), tracker)
			assert.Nil(t, allocate(t, c, mig("whole", "7g.141gb").Obj()), "the 7g placement overlaps the instance")
			assert.Equal(t, []string{"gpu-0-4g-71gb-0"}, allocate(t, c, mig("half", "4g.71gb").Obj()), "the other half is free")
			assert.Nil(t, allocate(t, c, mig("other-half", "4g.71gb").Obj()))
			assert.Equal(t, []string{"gpu-0-3g-71gb-4"}, allocate(t, c, mig("tolerates", "3g.71gb").Tolerate(health.XIDTaintKey).Obj()))
		})
	}
}

// A fault on a time-sliced GPU taints its shared device: no new share is
// placed on it, and the node's other GPU takes the claims.
func TestFaultOnSharedGPUTaintsItsShares(t *testing.T) {
	m := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) })
	dev := func(name string) *tierratest.ClaimWrapper {
		return tierratest.MakeClaim(name, "ns").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Capacity(tslices.CapCompute, "250")
	}
	for fname, f := range featureSets {
		t.Run(fname, func(t *testing.T) {
			tracker := health.NewTracker(testingclock.NewFakeClock(time.Now()), nil)
			tracker.Observe(health.Event{GPU: m.GPUs[0].UUID, Kind: health.KindDoubleBitECC})
			c := healthCluster(t, f, m, nil, tierratest.StandardPolicy(), tracker)
			for _, name := range []string{"a", "b", "c", "d"} {
				assert.Equal(t, []string{"gpu-1"}, allocate(t, c, dev(name).Obj()), name)
			}
			assert.Nil(t, allocate(t, c, dev("e").Obj()), "the healthy GPU is full")
			assert.Equal(t, []string{"gpu-0"}, allocate(t, c, dev("tolerates").Tolerate(health.ECCTaintKey).Obj()))
		})
	}
}
