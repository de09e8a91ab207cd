package slices_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

func buildFor(t *testing.T, p v1alpha1.Partitioning, mig bool) resourceslice.DriverResources {
	t.Helper()
	w := tierratest.MakePolicy().Tier("t", p).DefaultPrice("3.5")
	if p == v1alpha1.PartitioningShared {
		w = w.Sharing(v1alpha1.SharingMPS)
	}
	dr, err := tslices.Build(tslices.Node{Name: "n", Machine: tierratest.DGXH200(mig)}, w.Obj())
	require.NoError(t, err)
	return dr
}

func count(dr resourceslice.DriverResources, cond func(resourceapi.Device) bool) (devices, counterSets int) {
	for _, pool := range dr.Pools {
		for _, s := range pool.Slices {
			counterSets += len(s.SharedCounters)
			for _, d := range s.Devices {
				if cond(d) {
					devices++
				}
			}
		}
	}
	return devices, counterSets
}

func all(resourceapi.Device) bool { return true }

func TestWithdrawWithoutPartitionableDevices(t *testing.T) {
	dr := buildFor(t, v1alpha1.PartitioningMIG, true)
	before, counters := count(dr, all)
	require.NotZero(t, counters, "a MIG node publishes counters")
	out, gone := tslices.Withdraw(dr, sets.New(tslices.FeaturePartitionableDevices))
	after, counters := count(out, all)
	consuming, _ := count(out, func(d resourceapi.Device) bool { return len(d.ConsumesCounters) > 0 })
	assert.Zero(t, consuming, "no device that consumes counters is left")
	assert.Zero(t, counters)
	assert.Equal(t, before-after, gone)
	assert.NotZero(t, gone)
	again, _ := count(dr, all)
	assert.Equal(t, before, again, "the input is not changed")
}

func TestWithdrawWithoutConsumableCapacity(t *testing.T) {
	dr := buildFor(t, v1alpha1.PartitioningShared, false)
	out, gone := tslices.Withdraw(dr, sets.New(tslices.FeatureConsumableCapacity))
	assert.Equal(t, 8, gone, "the eight shared H200s go")
	left, _ := count(out, all)
	assert.Zero(t, left)

	whole := buildFor(t, v1alpha1.PartitioningWhole, false)
	kept, gone := tslices.Withdraw(whole, sets.New(tslices.FeatureConsumableCapacity, "DRADeviceBindingConditions"))
	assert.Zero(t, gone, "whole GPUs need neither feature")
	assert.Equal(t, whole, kept)
}

func TestWithdrawTaintedWithoutDeviceTaints(t *testing.T) {
	dr := buildFor(t, v1alpha1.PartitioningWhole, false)
	taint := resourceapi.DeviceTaint{Key: "k", Effect: resourceapi.DeviceTaintEffectNoSchedule}
	tainted := tslices.TaintDevices(dr, func(d resourceapi.Device) []resourceapi.DeviceTaint {
		if d.Name == "gpu-3" {
			return []resourceapi.DeviceTaint{taint}
		}
		return nil
	})
	out, gone := tslices.Withdraw(tainted, sets.New(tslices.FeatureDeviceTaints))
	assert.Equal(t, 1, gone)
	names, _ := count(out, func(d resourceapi.Device) bool { return d.Name == "gpu-3" })
	assert.Zero(t, names, "the tainted GPU is not published untainted")
	left, _ := count(out, all)
	assert.Equal(t, 7, left)
}
