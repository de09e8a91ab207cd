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
	rest, err := env.cluster.RESTConfig()
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rest)
	require.NoError(t, err)
	var section any
	if quiet != nil {
		section = map[string]string{"quietPeriod": quiet.String()}
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"health": section}})
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
	quiet := healthQuiet
	setQuietPeriod(ctx, t, node, &quiet)
	var gpuDevice string
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		cleanNamespace(ctx, t, "research")
		setQuietPeriod(ctx, t, node, nil)
		if gpuDevice != "" {
			waitXIDTaint(ctx, t, node, gpuDevice, false, 2*healthQuiet)
		}
	})
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
