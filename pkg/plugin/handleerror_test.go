package plugin_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/plugin"
)

// countDevices counts the published devices that satisfy cond.
func (h *harness) countDevices(t *testing.T, cond func(resourceapi.Device) bool) int {
	t.Helper()
	n := 0
	for _, s := range h.publishedSlices(t) {
		for _, d := range s.Spec.Devices {
			if cond(d) {
				n++
			}
		}
	}
	return n
}

func consumesCounters(d resourceapi.Device) bool { return len(d.ConsumesCounters) > 0 }

// The apiserver dropping counters (DRAPartitionableDevices off) withdraws
// the MIG placements, with a Warning Event on the node; the plugin goes on
// serving.
func TestDroppedCountersWithdrawMIGDevices(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	slices := h.publishedSlices(t)
	require.NotZero(t, h.countDevices(t, consumesCounters), "GPUs 4-7 publish MIG placements")
	var desired *resourceapi.ResourceSlice
	for _, s := range slices {
		for _, d := range s.Spec.Devices {
			if consumesCounters(d) {
				desired = s
			}
		}
	}
	require.NotNil(t, desired)
	actual := desired.DeepCopy()
	for i := range actual.Spec.Devices {
		actual.Spec.Devices[i].ConsumesCounters = nil
	}
	dropped := &resourceslice.DroppedFieldsError{PoolName: nodeName, DesiredSlice: desired, ActualSlice: actual}
	require.Equal(t, []string{"DRAPartitionableDevices"}, dropped.DisabledFeatures())

	h.driver.HandleError(h.ctx, dropped, "publish ResourceSlices")

	require.Eventually(t, func() bool { return h.countDevices(t, consumesCounters) == 0 }, 10*time.Second, 20*time.Millisecond,
		"no MIG placement stays published without counters")
	assert.NotZero(t, h.countDevices(t, func(resourceapi.Device) bool { return true }), "the whole GPUs stay published")
	events, err := h.client.CoreV1().Events(metav1.NamespaceDefault).List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, events.Items, 1)
	assert.Equal(t, plugin.ReasonSlicesWithdrawn, events.Items[0].Reason)
	assert.Contains(t, events.Items[0].Message, "DRAPartitionableDevices")
	assert.NoError(t, h.driver.Err(), "dropped fields are not fatal")

	h.driver.HandleError(h.ctx, dropped, "publish ResourceSlices")
	events, err = h.client.CoreV1().Events(metav1.NamespaceDefault).List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, events.Items, 1, "one Event per newly disabled feature, not per report")
}

func TestFatalBackgroundErrorStopsThePlugin(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining)
	h.driver.HandleError(h.ctx, fmt.Errorf("update slice: %w", kubeletplugin.ErrRecoverable), "publish ResourceSlices")
	select {
	case <-h.driver.Failed():
		t.Fatal("a recoverable error must not stop the plugin")
	default:
	}
	require.NoError(t, h.driver.Err())

	boom := errors.New("listener closed")
	h.driver.HandleError(h.ctx, boom, "DRA gRPC server failed")
	select {
	case <-h.driver.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("a fatal error must stop the plugin")
	}
	require.ErrorIs(t, h.driver.Err(), boom)
	assert.Contains(t, h.driver.Err().Error(), "DRA gRPC server failed")
	h.driver.HandleError(h.ctx, errors.New("second"), "again")
	assert.ErrorIs(t, h.driver.Err(), boom, "the first fatal error is kept")
}
