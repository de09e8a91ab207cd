package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

const trainingPod = `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: one-gpu, namespace: research}
spec:
  spec:
    devices:
      requests: [{name: gpu, exactly: {deviceClassName: training.gpu.tierra.dev}}]
`

// Killing the plugin while a pod is being prepared keeps the running pods'
// claims prepared; the new pod runs once the restarted plugin registers,
// and every claim unprepares cleanly afterwards.
func TestPluginRestartMidFlight(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "dgx-h200-train"
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	applyFile(ctx, t, "demo/scenarios/training")
	running := podClaim(ctx, t, waitRunning(ctx, t, "research", "llm-pretrain"))

	applyYAML(ctx, t, trainingPod+podYAML("research", "late", "one-gpu"))
	require.NoError(t, env.nodes[node].RestartPlugin(ctx))
	late := podClaim(ctx, t, waitRunning(ctx, t, "research", "late"))

	assert.Equal(t, 2, cdiSpecs(t, node), "both claims' CDI specs after the restart")
	exclusive := 0
	for _, g := range machineState(t, node).GPUs {
		if g.ComputeMode == nvmlExclusiveProcess {
			exclusive++
		}
	}
	assert.Equal(t, 5, exclusive, "the running pod's four GPUs and the new pod's one stay exclusive")
	for _, r := range running.Status.Allocation.Devices.Results {
		gpu := intAttr(t, publishedDevice(ctx, t, node, r.Device), slices.AttrIndex)
		assert.Equal(t, nvmlExclusiveProcess, machineState(t, node).GPUs[gpu].ComputeMode, "GPU %d of the running pod", gpu)
	}
	assert.NotEqual(t, running.Status.Allocation.Devices.Results[0].Device, late.Status.Allocation.Devices.Results[0].Device)

	deletePods(ctx, t, "research", "llm-pretrain", "late")
	assert.Zero(t, cdiSpecs(t, node), "CDI specs left after both pods went")
	for i, g := range machineState(t, node).GPUs {
		assert.NotEqual(t, nvmlExclusiveProcess, g.ComputeMode, "GPU %d still exclusive", i)
	}
}
