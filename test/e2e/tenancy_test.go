package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// requireSelector checks that admission added the CEL selector to the
// claim's only request.
func requireSelector(t *testing.T, claim *resourceapi.ResourceClaim, expr string) {
	t.Helper()
	require.Len(t, claim.Spec.Devices.Requests, 1)
	req := claim.Spec.Devices.Requests[0]
	require.NotNil(t, req.Exactly)
	for _, s := range req.Exactly.Selectors {
		if s.CEL != nil && s.CEL.Expression == expr {
			return
		}
	}
	t.Fatalf("claim %s: no selector %q in %+v", claim.Name, expr, req.Exactly.Selectors)
}

// Two notebooks of one tenant time-slice one GPU. A notebook of another
// tenant is kept off that GPU by the scheduler itself: the tenancy
// admission policy gives its claim the tenant's slot selector, and the
// GPU's tenancy counter is spent while research holds it. Without the
// selector (a claim admission did not see) the plugin refuses it at
// prepare, naming both tenants and the GPU.
func TestTenantsNeverShareASoftSharedGPU(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		cleanNamespace(ctx, t, "research")
		cleanNamespace(ctx, t, "product")
	})
	applyFile(ctx, t, "demo/scenarios/dev")
	alice := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook-alice"))
	bob := podClaim(ctx, t, waitRunning(ctx, t, "research", "notebook-bob"))
	shared := alice.Status.Allocation.Devices.Results[0]
	assert.Equal(t, shared.Device, bob.Status.Allocation.Devices.Results[0].Device, "one tenant's notebooks share a GPU")

	applyYAML(ctx, t, `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: notebook, namespace: product}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: dev.gpu.tierra.dev
          capacity: {requests: {gpu.tierra.dev/compute: "250", gpu.tierra.dev/memory: 4Gi}}
`+podYAML("product", "intruder", "notebook"))
	intruder := podClaim(ctx, t, waitRunning(ctx, t, "product", "intruder"))
	got := intruder.Status.Allocation.Devices.Results[0]
	other := publishedDevice(ctx, t, got.Pool, got.Device)
	mine := publishedDevice(ctx, t, shared.Pool, shared.Device)
	assert.NotEqual(t, intAttr(t, mine, slices.AttrIndex), intAttr(t, other, slices.AttrIndex), "product runs on research's GPU")
	assert.Equal(t, "product", slices.StringAttribute(other, slices.AttrTenant))
	assert.Equal(t, "research", slices.StringAttribute(mine, slices.AttrTenant))
	requireSelector(t, intruder, slices.TenantSelector("product"))
	deletePods(ctx, t, "product", "intruder")

	// Defence in depth: a claim that bypasses the slot selector (written
	// here with research's device in mind) is refused by the plugin.
	t.Cleanup(func() {
		_ = env.cs.ResourceV1().DeviceClasses().Delete(context.WithoutCancel(ctx), "gpu-any.e2e.tierra.dev", metav1.DeleteOptions{})
	})
	applyYAML(ctx, t, fmt.Sprintf(`
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu-any.e2e.tierra.dev}
spec:
  selectors: [{cel: {expression: 'device.driver == "gpu.tierra.dev"'}}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: squatter, namespace: product}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: gpu-any.e2e.tierra.dev
          capacity: {requests: {gpu.tierra.dev/compute: "250", gpu.tierra.dev/memory: 4Gi}}
          selectors: [{cel: {expression: 'device.attributes["gpu.tierra.dev"].?uuid.orValue("") == %q'}}]
      config:
      - opaque:
          driver: gpu.tierra.dev
          parameters: {apiVersion: tierra.dev/v1alpha1, kind: GpuConfig, sharing: {strategy: TimeSlicing}}
`, slices.StringAttribute(mine, slices.AttrUUID))+podYAML("product", "squatter", "squatter"))
	msg := waitEvent(ctx, t, "product", "squatter", "FailedPrepareDynamicResources")
	t.Logf("refusal: %s", msg)
	for _, want := range []string{`"research"`, `"product"`, slices.StringAttribute(mine, slices.AttrUUID)} {
		assert.Contains(t, msg, want, "the refusal names both tenants and the GPU")
	}
	deletePods(ctx, t, "research", "notebook-alice", "notebook-bob")
	waitRunning(ctx, t, "product", "squatter")
}
