package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// The demo's training pod gets four whole H200s inside one NVLink domain,
// each in exclusive-process compute mode while the pod runs; deleting the
// pod restores them.
func TestTrainingFourGPUsInOneNVLinkDomain(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "dgx-h200-train"
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	applyFile(ctx, t, "demo/scenarios/training")
	pod := waitRunning(ctx, t, "research", "llm-pretrain")
	assert.Equal(t, node, pod.Spec.NodeName)
	claim := podClaim(ctx, t, pod)
	results := claim.Status.Allocation.Devices.Results
	require.Len(t, results, 4)
	domains := map[string]bool{}
	for _, r := range results {
		assert.Equal(t, node, r.Pool)
		d := publishedDevice(ctx, t, r.Pool, r.Device)
		domains[slices.StringAttribute(d, slices.AttrNVLinkDomain)] = true
		gpu := intAttr(t, d, slices.AttrIndex)
		assert.Equal(t, nvmlExclusiveProcess, machineState(t, node).GPUs[gpu].ComputeMode, "GPU %d compute mode", gpu)
	}
	assert.Len(t, domains, 1, "one NVLink domain: %v", domains)
	assert.NotContains(t, domains, "", "the domain attribute is published")
	msg := waitEvent(ctx, t, "research", "llm-pretrain", "DynamicResourcesPrepared")
	assert.Contains(t, msg, "gpu.tierra.dev/claim=")
	assert.Equal(t, 1, cdiSpecs(t, node))

	deletePods(ctx, t, "research", "llm-pretrain")
	for i, g := range machineState(t, node).GPUs {
		assert.NotEqual(t, nvmlExclusiveProcess, g.ComputeMode, "GPU %d still exclusive after the pod went", i)
	}
	assert.Zero(t, cdiSpecs(t, node), "CDI spec left after unprepare")
}
