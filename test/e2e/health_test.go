package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// healthQuiet is the quiet period the test gives the TierPolicy: long
// enough for the steps it takes while the GPU is tainted, short enough to
// wait out.
const healthQuiet = 30 * time.Second

// setQuietPeriod patches the TierPolicy's health.quietPeriod (nil removes
// the health section) and waits until the node's plugin has taken it.
func setQuietPeriod(ctx context.Context, t *testing.T, node string, quiet *time.Duration) {
	t.Helper()
	var section map[string]string
	if quiet != nil {
		section = map[string]string{"quietPeriod": quiet.String()}
	}
	setHealthSection(ctx, t, node, section)
}

// setHealthSection replaces the TierPolicy's health section (nil removes
// it) and waits until the node's plugin has taken it.
func setHealthSection(ctx context.Context, t *testing.T, node string, section map[string]string) {
	t.Helper()
	rest, err := env.cluster.RESTConfig()
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rest)
	require.NoError(t, err)
	var body any
	if section != nil {
		// A merge patch merges maps: null the fields section leaves out,
		// so that those of an earlier section do not stay.
		fields := map[string]any{"xids": nil, "otherXIDs": nil, "doubleBitECC": nil, "gpuLost": nil,
			"quietPeriod": nil, "maxQuietPeriod": nil, "flapWindow": nil}
		for k, v := range section {
			fields[k] = v
		}
		body = fields
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"health": body}})
	require.NoError(t, err)
	log := env.nodes[node].PluginLog()
	before := policyChanges(log)
	_, err = dyn.Resource(v1alpha1.SchemeGroupVersion.WithResource("tierpolicies")).
		Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	poll(ctx, t, "plugin never took the new TierPolicy", func(context.Context) (bool, error) {
		return policyChanges(log) > before, nil
	})
}

// policyChanges counts the plugin's republishes for a TierPolicy change.
func policyChanges(log string) int {
	data, _ := os.ReadFile(log)
	return bytes.Count(data, []byte("TierPolicy changed"))
}

// xidTaint is the device's health taint for an XID, if any.
func xidTaint(d resourceapi.Device) (resourceapi.DeviceTaint, bool) {
	i := slices.IndexFunc(d.Taints, func(t resourceapi.DeviceTaint) bool { return t.Key == health.XIDTaintKey })
	if i < 0 {
		return resourceapi.DeviceTaint{}, false
	}
	return d.Taints[i], true
}

// waitXIDTaint polls the device every 20 ms until it is (or is no longer)
// tainted for an XID, and returns when it saw that.
func waitXIDTaint(ctx context.Context, t *testing.T, node, device string, tainted bool, within time.Duration) time.Time {
	t.Helper()
	var seen time.Time
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		d, ok, err := findDevice(ctx, node, device)
		if err != nil || !ok {
			return false, err
		}
		_, has := xidTaint(d)
		seen = time.Now()
		return has == tainted, nil
	})
	require.NoError(t, err, "device %s/%s tainted=%t not within %s", node, device, tainted, within)
	return seen
}

// deviceHealth is what the pod's status says of the health of one device of
// its claims.
func deviceHealth(pod *corev1.Pod) map[corev1.ResourceID]corev1.ResourceHealthStatus {
	out := map[corev1.ResourceID]corev1.ResourceHealthStatus{}
	for _, cs := range pod.Status.ContainerStatuses {
		for _, rs := range cs.AllocatedResourcesStatus {
			for _, r := range rs.Resources {
				out[r.ResourceID] = r.Health
			}
		}
	}
	return out
}

// waitUnhealthyCount waits until the pod's status reports exactly n
// Unhealthy devices and the rest Healthy.
func waitUnhealthyCount(ctx context.Context, t *testing.T, ns, name string, n, total int) map[corev1.ResourceID]corev1.ResourceHealthStatus {
	t.Helper()
	var last map[corev1.ResourceID]corev1.ResourceHealthStatus
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = deviceHealth(pod)
		unhealthy, healthy := 0, 0
		for _, h := range last {
			switch h {
			case corev1.ResourceHealthStatusUnhealthy:
				unhealthy++
			case corev1.ResourceHealthStatusHealthy:
				healthy++
			}
		}
		return unhealthy == n && healthy == total-n, nil
	})
	require.NoError(t, err, "pod %s/%s allocatedResourcesStatus: %v", ns, name, last)
	return last
}

func wholeGPUsYAML(name string, count int) string {
	return templateYAML("research", name, "training.gpu.tierra.dev", fmt.Sprintf("          count: %d\n", count), "") +
		podYAML("research", name, name)
}

// XID 79 (GPU fallen off the bus) on a GPU the training pod holds: the
// GPU's device is tainted at once and the pod's status shows it Unhealthy.
// Once the pod is gone, an 8-GPU claim on the 8-GPU node stays unallocated
// while a 7-GPU one is placed on the healthy GPUs; after the quiet period
// the taint clears by itself and the 8-GPU pod runs.
func TestHealthXIDTaintsAndClears(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "dgx-h200-train"
	var gpuDevice string
	quietScenario(ctx, t, node, healthQuiet, &gpuDevice, "research")
	applyFile(ctx, t, "demo/scenarios/training")
	trainer := waitRunning(ctx, t, "research", "llm-pretrain")
	results := podClaim(ctx, t, trainer).Status.Allocation.Devices.Results
	require.Len(t, results, 4)
	waitUnhealthyCount(ctx, t, "research", "llm-pretrain", 0, 4)
	gpuDevice = results[len(results)-1].Device
	index := int(intAttr(t, publishedDevice(ctx, t, node, gpuDevice), tslices.AttrIndex))

	faultAt := time.Now()
	require.NoError(t, env.nodes[node].InjectFault(nvgpu.FakeFault{GPU: index, Kind: nvgpu.FaultXID, XID: 79}))
	taintedAt := waitXIDTaint(ctx, t, node, gpuDevice, true, 2*time.Second)
	taint, _ := xidTaint(publishedDevice(ctx, t, node, gpuDevice))
	assert.Equal(t, "79", taint.Value)
	assert.Equal(t, resourceapi.DeviceTaintEffectNoSchedule, taint.Effect)
	for _, r := range results[:len(results)-1] {
		_, has := xidTaint(publishedDevice(ctx, t, node, r.Device))
		assert.False(t, has, "device %s of another GPU is not tainted", r.Device)
	}
	statuses := waitUnhealthyCount(ctx, t, "research", "llm-pretrain", 1, 4)
	unhealthyAt := time.Now()
	t.Logf("XID 79 on GPU %d (%s): tainted after %s, pod status Unhealthy after %s: %v",
		index, gpuDevice, taintedAt.Sub(faultAt).Round(time.Millisecond), unhealthyAt.Sub(faultAt).Round(time.Millisecond), statuses)

	deletePods(ctx, t, "research", "llm-pretrain")
	applyYAML(ctx, t, wholeGPUsYAML("eight", 8))
	waitUnschedulable(ctx, t, "research", "eight")
	applyYAML(ctx, t, wholeGPUsYAML("seven", 7))
	seven := podClaim(ctx, t, waitRunning(ctx, t, "research", "seven")).Status.Allocation.Devices.Results
	require.Len(t, seven, 7)
	for _, r := range seven {
		assert.Equal(t, node, r.Pool)
		assert.NotEqual(t, gpuDevice, r.Device, "the tainted GPU is not allocated")
	}
	_, still := xidTaint(publishedDevice(ctx, t, node, gpuDevice))
	require.True(t, still, "the GPU stays tainted within the quiet period (%s)", healthQuiet)
	deletePods(ctx, t, "research", "seven")
	eight, err := env.cs.CoreV1().Pods("research").Get(ctx, "eight", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, eight.Spec.NodeName, "the 8-GPU pod waits for the tainted GPU")

	clearedAt := waitXIDTaint(ctx, t, node, gpuDevice, false, 2*healthQuiet)
	eightClaim := podClaim(ctx, t, waitRunning(ctx, t, "research", "eight"))
	runningAt := time.Now()
	assert.Len(t, eightClaim.Status.Allocation.Devices.Results, 8)
	t.Logf("quiet period %s: fault → clear %s (%s after the quiet period ended), clear → 8-GPU pod running %s",
		healthQuiet, clearedAt.Sub(faultAt).Round(time.Millisecond),
		clearedAt.Sub(faultAt.Add(healthQuiet)).Round(time.Millisecond), runningAt.Sub(clearedAt).Round(time.Millisecond))
}

// poolDevices are the devices a node publishes.
func poolDevices(ctx context.Context, t *testing.T, node string) []resourceapi.Device {
	t.Helper()
	list, err := env.cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: resourceapi.ResourceSliceSelectorNodeName + "=" + node,
	})
	require.NoError(t, err)
	var out []resourceapi.Device
	for _, s := range list.Items {
		out = append(out, s.Spec.Devices...)
	}
	return out
}

// waitTaintedIff waits (2 s at most) until exactly the node's devices that
// want says are tainted for an XID, and returns when it saw that: the
// taints reach the node's slices one ResourceSlice at a time.
func waitTaintedIff(ctx context.Context, t *testing.T, node string, want func(resourceapi.Device) bool) time.Time {
	t.Helper()
	var wrong []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		wrong = nil
		for _, d := range poolDevices(ctx, t, node) {
			if _, has := xidTaint(d); has != want(d) {
				wrong = append(wrong, fmt.Sprintf("%s (tainted %t)", d.Name, has))
			}
		}
		return len(wrong) == 0, nil
	})
	require.NoError(t, err, "devices of %s tainted against expectation: %v", node, wrong)
	return time.Now()
}

// shortQuiet is the quiet period of the scenarios that only watch the
// taint come and go.
const shortQuiet = 5 * time.Second

// quietScenario sets the quiet period for a test and, at its end, cleans
// the namespaces, restores the policy and waits until device is untainted.
func quietScenario(ctx context.Context, t *testing.T, node string, quiet time.Duration, device *string, namespaces ...string) {
	t.Helper()
	setQuietPeriod(ctx, t, node, &quiet)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		for _, ns := range namespaces {
			cleanNamespace(ctx, t, ns)
		}
		setQuietPeriod(ctx, t, node, nil)
		if *device != "" {
			waitXIDTaint(ctx, t, node, *device, false, 2*quiet+10*time.Second)
		}
	})
}

// Two notebooks of one tenant time-slice an L4: XID 79 on it taints every
// device of that GPU and none of the others, both notebooks see their
// device Unhealthy, and both see it Healthy again once the quiet period
// has passed.
func TestHealthXIDOnATimeSlicedGPU(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "l4-dev"
	var device string
	quietScenario(ctx, t, node, shortQuiet, &device, "research")
	applyFile(ctx, t, "demo/scenarios/dev")
	alice := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook-alice")).Status.Allocation.Devices.Results[0]
	bob := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook-bob")).Status.Allocation.Devices.Results[0]
	require.Equal(t, alice.Device, bob.Device, "the notebooks share a GPU")
	device = alice.Device
	gpu := intAttr(t, publishedDevice(ctx, t, node, device), tslices.AttrIndex)
	for _, pod := range []string{"notebook-alice", "notebook-bob"} {
		waitUnhealthyCount(ctx, t, "research", pod, 0, 1)
	}

	faultAt := time.Now()
	require.NoError(t, env.nodes[node].InjectFault(nvgpu.FakeFault{GPU: int(gpu), Kind: nvgpu.FaultXID, XID: 79}))
	taintedAt := waitXIDTaint(ctx, t, node, device, true, 2*time.Second)
	waitTaintedIff(ctx, t, node, func(d resourceapi.Device) bool { return intAttr(t, d, tslices.AttrIndex) == gpu })
	for _, pod := range []string{"notebook-alice", "notebook-bob"} {
		waitUnhealthyCount(ctx, t, "research", pod, 1, 1)
	}
	unhealthyAt := time.Now()
	clearedAt := waitXIDTaint(ctx, t, node, device, false, 2*shortQuiet)
	for _, pod := range []string{"notebook-alice", "notebook-bob"} {
		waitUnhealthyCount(ctx, t, "research", pod, 0, 1)
	}
	t.Logf("time-sliced GPU %d: tainted after %s, both pods Unhealthy after %s, cleared after %s (quiet period %s), both Healthy again after %s",
		gpu, taintedAt.Sub(faultAt).Round(time.Millisecond), unhealthyAt.Sub(faultAt).Round(time.Millisecond),
		clearedAt.Sub(faultAt).Round(time.Millisecond), shortQuiet, time.Since(faultAt).Round(time.Millisecond))
}

// An XID that NVML scopes to one MIG instance taints the placements that
// overlap that instance (and the GPU's whole device, if published), not the
// other placements of the GPU; the pod on the instance sees it Unhealthy.
func TestHealthXIDOnAMIGInstance(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "dgx-h200-infer"
	var device string
	quietScenario(ctx, t, node, shortQuiet, &device, "research")
	applyYAML(ctx, t, templateYAML("research", "mig-1g", "inference.gpu.tierra.dev",
		`          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb" && device.attributes["gpu.tierra.dev"].index == 0'}}]
`, "")+podYAML("research", "mig-1g", "mig-1g"))
	result := podClaim(ctx, t, waitRunning(ctx, t, "research", "mig-1g")).Status.Allocation.Devices.Results[0]
	held := publishedDevice(ctx, t, node, result.Device)
	placement, ok := tslices.DevicePlacement(held)
	require.True(t, ok, "device %s is a MIG placement", held.Name)
	gi := -1
	for _, inst := range machineState(t, node).GPUs[0].GPUInstances {
		if int(inst.Start) == placement.Start {
			gi = int(inst.ID)
		}
	}
	require.GreaterOrEqual(t, gi, 0, "no GPU instance at slice %d", placement.Start)
	waitUnhealthyCount(ctx, t, "research", "mig-1g", 0, 1)

	faultAt := time.Now()
	require.NoError(t, env.nodes[node].InjectFault(nvgpu.FakeFault{GPU: 0, Kind: nvgpu.FaultXID, XID: 79, GPUInstance: &gi}))
	device = held.Name
	taintedAt := waitXIDTaint(ctx, t, node, device, true, 2*time.Second)
	onGPU0 := func(d resourceapi.Device) bool { return intAttr(t, d, tslices.AttrIndex) == 0 }
	allTaintedAt := waitTaintedIff(ctx, t, node, func(d resourceapi.Device) bool {
		pl, isMIG := tslices.DevicePlacement(d)
		return onGPU0(d) && (!isMIG || pl.Overlaps(placement))
	})
	untainted := 0
	for _, d := range poolDevices(ctx, t, node) {
		if _, has := xidTaint(d); !has && onGPU0(d) {
			untainted++
		}
	}
	assert.Positive(t, untainted, "placements of GPU 0 that do not overlap the instance stay offered")
	waitUnhealthyCount(ctx, t, "research", "mig-1g", 1, 1)
	unhealthyAt := time.Now()
	clearedAt := waitXIDTaint(ctx, t, node, device, false, 2*shortQuiet)
	t.Logf("MIG instance %d (slices %d+%d) of GPU 0: its device tainted after %s, every overlapping placement after %s, pod Unhealthy after %s, cleared after %s (quiet period %s); %d placements of GPU 0 stayed untainted",
		gi, placement.Start, placement.Size, taintedAt.Sub(faultAt).Round(time.Millisecond), allTaintedAt.Sub(faultAt).Round(time.Millisecond), unhealthyAt.Sub(faultAt).Round(time.Millisecond),
		clearedAt.Sub(faultAt).Round(time.Millisecond), shortQuiet, untainted)
}
