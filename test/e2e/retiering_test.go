package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// findDevice is publishedDevice without failing when the device is not
// (yet) published.
func findDevice(ctx context.Context, pool, device string) (resourceapi.Device, bool, error) {
	list, err := env.cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: resourceapi.ResourceSliceSelectorNodeName + "=" + pool,
	})
	if err != nil {
		return resourceapi.Device{}, false, err
	}
	for _, s := range list.Items {
		for _, d := range s.Spec.Devices {
			if s.Spec.Pool.Name == pool && d.Name == device {
				return d, true, nil
			}
		}
	}
	return resourceapi.Device{}, false, nil
}

func hasReshapingTaint(d resourceapi.Device) bool {
	return slices.ContainsFunc(d.Taints, func(t resourceapi.DeviceTaint) bool {
		return t.Key == tslices.ReshapingTaintKey && t.Effect == resourceapi.DeviceTaintEffectNoSchedule
	})
}

// waitReshaping waits until the pool publishes the device with (or
// without) the reshaping taint.
func waitReshaping(ctx context.Context, t *testing.T, pool, device string, tainted bool) {
	t.Helper()
	poll(ctx, t, "device "+device+" never published as wanted", func(ctx context.Context) (bool, error) {
		d, ok, err := findDevice(ctx, pool, device)
		return ok && hasReshapingTaint(d) == tainted, err
	})
}

func setTier(ctx context.Context, t *testing.T, node, tier string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{v1alpha1.NodeTierLabel: tier}}})
	require.NoError(t, err)
	_, err = env.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
}

// waitUnschedulable waits until the scheduler reports the pod unschedulable.
func waitUnschedulable(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	poll(ctx, t, "pod "+name+" never reported unschedulable", func(ctx context.Context) (bool, error) {
		pod, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	})
}

// l4Selector opens a selector line for templateYAML; callers close it.
const l4Selector = `          selectors:
          - cel: {expression: 'device.attributes["gpu.tierra.dev"].productName == "NVIDIA L4"`

// An admin relabels the dev node for inference while a notebook
// time-slices its GPU 0. The node republishes GPU 0 whole, tainted: a new
// pod that wants exactly that GPU stays unschedulable (instead of being
// allocated a GPU the plugin must refuse), a pod that takes any L4 lands
// on another GPU, and the notebook keeps running. Once the notebook ends,
// GPU 0 is published untainted and the waiting pod runs on it.
func TestRetieringKeepsNewClaimsOffAGPUWithLiveClaims(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "l4-dev"
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		cleanNamespace(ctx, t, "research")
		setTier(ctx, t, node, v1alpha1.TierDev)
		poll(ctx, t, "dev shape never restored", func(ctx context.Context) (bool, error) {
			_, ok, err := findDevice(ctx, node, "gpu-0")
			return !ok, err
		})
	})
	applyYAML(ctx, t, templateYAML("research", "notebook", "dev.gpu.tierra.dev", notebookRequest, "")+podYAML("research", "notebook", "notebook"))
	notebook := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook"))
	held := notebook.Status.Allocation.Devices.Results[0]
	require.Equal(t, node, held.Pool)
	require.Equal(t, int64(0), intAttr(t, publishedDevice(ctx, t, held.Pool, held.Device), tslices.AttrIndex), "the notebook is on GPU 0")

	setTier(ctx, t, node, v1alpha1.TierInference)
	waitReshaping(ctx, t, node, "gpu-0", true)
	gpu1 := publishedDevice(ctx, t, node, "gpu-1")
	assert.False(t, hasReshapingTaint(gpu1), "only GPU 0 reshapes")

	applyYAML(ctx, t, templateYAML("research", "l4-gpu-0", "inference.gpu.tierra.dev", l4Selector+` && device.attributes["gpu.tierra.dev"].index == 0'}
`, "")+"---"+templateYAML("research", "l4-any", "inference.gpu.tierra.dev", l4Selector+`'}
`, "")+podYAML("research", "wants-gpu-0", "l4-gpu-0")+podYAML("research", "any-l4", "l4-any"))
	anyL4 := podClaim(ctx, t, waitRunning(ctx, t, "research", "any-l4"))
	got := anyL4.Status.Allocation.Devices.Results[0]
	assert.Equal(t, node, got.Pool)
	assert.NotEqual(t, "gpu-0", got.Device, "the tainted GPU is not allocated")
	waitUnschedulable(ctx, t, "research", "wants-gpu-0")
	assert.Empty(t, events(ctx, "research", "wants-gpu-0", "FailedPrepareDynamicResources"), "never allocated, so never refused")

	still := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook"))
	assert.Equal(t, held, still.Status.Allocation.Devices.Results[0], "the notebook keeps its device")

	deletePods(ctx, t, "research", "notebook")
	waitReshaping(ctx, t, node, "gpu-0", false)
	gpu0 := podClaim(ctx, t, waitRunning(ctx, t, "research", "wants-gpu-0"))
	assert.Equal(t, "gpu-0", gpu0.Status.Allocation.Devices.Results[0].Device)
}
