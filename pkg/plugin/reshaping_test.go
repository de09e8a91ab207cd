package plugin_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func reshaping(d resourceapi.Device) bool {
	return slices.ContainsFunc(d.Taints, func(t resourceapi.DeviceTaint) bool {
		return t.Key == tslices.ReshapingTaintKey && t.Effect == resourceapi.DeviceTaintEffectNoSchedule
	})
}

// taintedDevices are the published devices with the reshaping taint.
func (h *harness) taintedDevices(t *testing.T) []string {
	var out []string
	for _, s := range h.publishedSlices(t) {
		for _, d := range s.Spec.Devices {
			if reshaping(d) {
				out = append(out, d.Name)
			}
		}
	}
	return out
}

// relabel sets the node's tier label.
func (h *harness) relabel(t *testing.T, tier string) {
	node, err := h.client.CoreV1().Nodes().Get(h.ctx, nodeName, metav1.GetOptions{})
	require.NoError(t, err)
	node.Labels[v1alpha1.NodeTierLabel] = tier
	_, err = h.client.CoreV1().Nodes().Update(h.ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// timeSliced prepares a dev (time-sliced) claim of tenant research; it
// lands on GPU 0.
func (h *harness) timeSliced(t *testing.T, name string) *resourceapi.ResourceClaim {
	claim := h.claim(t, tierratest.MakeClaim(name, "team-a").UID("uid-"+name).Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Obj(), nil)
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-"+name].Error)
	require.True(t, strings.HasPrefix(claim.Status.Allocation.Devices.Results[0].Device, "gpu-0-"), "a slot of GPU 0")
	return claim
}

func wholeGPU(name string, cel ...string) *tierratest.ClaimWrapper {
	w := tierratest.MakeClaim(name, "team-a").UID("uid-"+name).Request("gpu", tiers.ClassName(v1alpha1.TierTraining))
	for _, e := range cel {
		w = w.Selector(e)
	}
	return w
}

const (
	waitFor = 10 * time.Second
	tick    = 20 * time.Millisecond
)

const onGPU0 = `device.attributes["gpu.tierra.dev"].index == 0`

// Re-tiering a node under a time-sliced claim: the republished whole gpu-0
// is tainted, the scheduler's allocator gives it to no new claim while the
// other GPUs stay allocatable, prepare refuses a claim that tolerates the
// taint, and once the claim is unprepared gpu-0 is published untainted and
// allocates.
func TestRetieringTaintsAGPUUntilItsClaimsEnd(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	ts := h.timeSliced(t, "ts")
	assert.Empty(t, h.taintedDevices(t), "nothing reshapes on the dev shape")

	h.relabel(t, v1alpha1.TierTraining)
	h.waitDevice(t, "gpu-0", reshaping, "training shape: gpu-0 tainted under the time-sliced claim")
	assert.Equal(t, []string{"gpu-0"}, h.taintedDevices(t), "only GPU 0 reshapes")
	h.cluster.Slices = h.publishedSlices(t)

	result, err := h.cluster.Try(h.ctx, nodeName, wholeGPU("on-0", onGPU0).Obj())
	require.NoError(t, err)
	assert.Nil(t, result, "the scheduler does not allocate the tainted gpu-0")
	other := h.claim(t, wholeGPU("train").Obj(), nil)
	assert.Equal(t, "gpu-1", other.Status.Allocation.Devices.Results[0].Device, "the other GPUs are allocatable")

	// A claim that tolerates the taint gets gpu-0 from the allocator;
	// prepare refuses it, naming the holder and the GPU. Try does not
	// record it: it never runs.
	tolerant := wholeGPU("tolerant", onGPU0).Tolerate(tslices.ReshapingTaintKey).Obj()
	result, err = h.cluster.Try(h.ctx, nodeName, tolerant)
	require.NoError(t, err)
	require.NotNil(t, result, "a tolerating claim is allocated gpu-0")
	require.Equal(t, "gpu-0", result.Devices.Results[0].Device)
	tolerant.Status.Allocation = result
	tolerant, err = h.client.ResourceV1().ResourceClaims(tolerant.Namespace).Create(h.ctx, tolerant, metav1.CreateOptions{})
	require.NoError(t, err)
	resp, err := h.prepare(tolerant)
	require.NoError(t, err)
	msg := resp.Claims["uid-tolerant"].Error
	assert.Contains(t, msg, "team-a/ts", "names the holder")
	assert.Contains(t, msg, h.gpu(t, 0).UUID, "names the GPU")
	assert.Contains(t, msg, "Shared, TimeSlicing")

	_, err = h.unprepare(ts)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(h.taintedDevices(t)) == 0 }, waitFor, tick, "gpu-0 untainted once its claim ended")
	h.cluster.Slices = h.publishedSlices(t)
	next := h.claim(t, wholeGPU("next", onGPU0).Obj(), nil)
	assert.Equal(t, "gpu-0", next.Status.Allocation.Devices.Results[0].Device)
	resp, err = h.prepare(next)
	require.NoError(t, err)
	assert.Empty(t, resp.Claims["uid-next"].Error)
}

// A plugin that restarts on the new tier cannot rebuild the old shape, but
// its records are on disk: the first publish already taints the GPU.
func TestRestartOnNewTierTaintsFromTheRecords(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	ts := h.timeSliced(t, "ts")
	h.stop()
	h.relabel(t, v1alpha1.TierTraining)
	require.NoError(t, h.client.ResourceV1().ResourceSlices().DeleteCollection(h.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	h.start(t)

	h.waitDevice(t, "gpu-0", func(resourceapi.Device) bool { return true }, "training shape published")
	assert.Equal(t, []string{"gpu-0"}, h.taintedDevices(t), "tainted from the first publish on")
	_, err := h.unprepare(ts)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(h.taintedDevices(t)) == 0 }, waitFor, tick, "gpu-0 untainted once its claim ended")
}

// Relabelling back to the tier the claim was prepared on publishes its
// slot again: the GPU stops reshaping while the claim lives.
func TestRelabelBackEndsReshaping(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev)
	h.timeSliced(t, "ts")
	h.relabel(t, v1alpha1.TierTraining)
	h.waitDevice(t, "gpu-0", reshaping, "training shape: gpu-0 tainted")
	h.relabel(t, v1alpha1.TierDev)
	require.Eventually(t, func() bool { return len(h.taintedDevices(t)) == 0 }, waitFor, tick, "dev shape again: nothing tainted")
}

// A claim the periodic claim pass frees (deleted from the API, never
// unprepared by the kubelet) ends the GPU's reshaping too.
func TestClaimPassEndsReshaping(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	h := startPlugin(t, v1alpha1.TierDev, func(h *harness) { h.clock = clk })
	ts := h.timeSliced(t, "ts")
	h.relabel(t, v1alpha1.TierTraining)
	h.waitDevice(t, "gpu-0", reshaping, "training shape: gpu-0 tainted")
	deleteClaim(t, h, ts)

	claimPass(t, clk, plugin.ClaimGCFirstPass)
	assert.Equal(t, []string{"gpu-0"}, h.taintedDevices(t), "gone only once: still held")
	claimPass(t, clk, plugin.DefaultClaimGCInterval)
	require.Eventually(t, func() bool { return len(h.taintedDevices(t)) == 0 }, waitFor, tick, "gpu-0 untainted once the pass freed the claim")
}
