package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// templates: "filler" leaves exactly one 1g.18gb placement on GPU 0 and one
// 2g placement on GPU 1 of the inference node; "ladder" asks for a 1g on
// GPU 0, else a 2g on GPU 1, else a whole GPU.
const inferenceTemplates = `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: filler, namespace: research}
spec:
  spec:
    devices:
      requests:
      - name: a
        exactly:
          deviceClassName: inference.gpu.tierra.dev
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile.startsWith("4g.") && device.attributes["gpu.tierra.dev"].index == 0'}}]
      - name: b
        exactly:
          deviceClassName: inference.gpu.tierra.dev
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile.startsWith("2g.") && device.attributes["gpu.tierra.dev"].index == 0'}}]
      - name: c
        exactly:
          deviceClassName: inference.gpu.tierra.dev
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile.startsWith("4g.") && device.attributes["gpu.tierra.dev"].index == 1'}}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: ladder, namespace: research}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        firstAvailable:
        - name: small
          deviceClassName: inference.gpu.tierra.dev
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb" && device.attributes["gpu.tierra.dev"].index == 0'}}]
        - name: medium
          deviceClassName: inference.gpu.tierra.dev
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].migProfile.startsWith("2g.") && device.attributes["gpu.tierra.dev"].index == 1'}}]
        - name: whole
          deviceClassName: gpu.tierra.dev
`

func podYAML(ns, name, template string) string {
	return fmt.Sprintf(`
---
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources: {claims: [{name: gpu}]}
  resourceClaims: [{name: gpu, resourceClaimTemplateName: %s}]
`, name, ns, template)
}

// migInstanceAt reports whether the node's GPU has a GPU instance starting
// at the memory slice.
func migInstanceAt(t *testing.T, node string, gpu, start int64) bool {
	for _, gi := range machineState(t, node).GPUs[gpu].GPUInstances {
		if int64(gi.Start) == start {
			return true
		}
	}
	return false
}

// firstAvailable falls from a 1g slice to a 2g slice to a whole GPU as each
// runs out (research may use the training tier, where the whole GPU is); deleting the 1g pod destroys its MIG instance and the next pod
// gets the same placement.
func TestInferenceFirstAvailableMIGThenWhole(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const infer = "dgx-h200-infer"
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	applyYAML(ctx, t, inferenceTemplates)
	applyYAML(ctx, t, podYAML("research", "filler", "filler"))
	waitRunning(ctx, t, "research", "filler")

	want := []struct{ pod, request, node string }{
		{"ladder-1", "gpu/small", infer}, {"ladder-2", "gpu/medium", infer}, {"ladder-3", "gpu/whole", "dgx-h200-train"},
	}
	var small string
	for _, w := range want {
		applyYAML(ctx, t, podYAML("research", w.pod, "ladder"))
		claim := podClaim(ctx, t, waitRunning(ctx, t, "research", w.pod))
		results := claim.Status.Allocation.Devices.Results
		require.Len(t, results, 1)
		assert.Equal(t, w.request, results[0].Request, w.pod)
		assert.Equal(t, w.node, results[0].Pool, w.pod)
		if w.node != infer {
			continue
		}
		d := publishedDevice(ctx, t, results[0].Pool, results[0].Device)
		gpu, start := intAttr(t, d, slices.AttrIndex), intAttr(t, d, slices.AttrMIGPlacement)
		assert.True(t, migInstanceAt(t, infer, gpu, start), "%s: no MIG instance on GPU %d at slice %d", w.pod, gpu, start)
		if w.pod == "ladder-1" {
			small = results[0].Device
		}
	}

	d := publishedDevice(ctx, t, infer, small)
	gpu, start := intAttr(t, d, slices.AttrIndex), intAttr(t, d, slices.AttrMIGPlacement)
	deletePods(ctx, t, "research", "ladder-1")
	assert.False(t, migInstanceAt(t, infer, gpu, start), "the deleted pod's MIG instance is still there")
	applyYAML(ctx, t, podYAML("research", "ladder-4", "ladder"))
	claim := podClaim(ctx, t, waitRunning(ctx, t, "research", "ladder-4"))
	assert.Equal(t, small, claim.Status.Allocation.Devices.Results[0].Device, "the freed slice is reused")
	assert.True(t, migInstanceAt(t, infer, gpu, start), "the next pod's MIG instance was not created")
}
