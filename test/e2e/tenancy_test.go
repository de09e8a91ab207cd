package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
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

	applyYAML(ctx, t, templateYAML("product", "notebook", "dev.gpu.tierra.dev", notebookRequest, "")+podYAML("product", "intruder", "notebook"))
	intruder := podClaim(ctx, t, waitRunning(ctx, t, "product", "intruder"))
	got := intruder.Status.Allocation.Devices.Results[0]
	other := publishedDevice(ctx, t, got.Pool, got.Device)
	mine := publishedDevice(ctx, t, shared.Pool, shared.Device)
	assert.NotEqual(t, intAttr(t, mine, slices.AttrIndex), intAttr(t, other, slices.AttrIndex), "product runs on research's GPU")
	assert.Equal(t, "product", slices.StringAttribute(other, slices.AttrTenant))
	assert.Equal(t, "research", slices.StringAttribute(mine, slices.AttrTenant))
	requireSelector(t, intruder, slices.TenantSelector("product"))
	deletePods(ctx, t, "product", "intruder")

	// Defence in depth: a claim admitted for research, in a namespace
	// relabelled to tenant product before its pod is scheduled, carries
	// research's slot selector, so the scheduler gives it research's slot;
	// the plugin resolves the namespace's tenant anew and refuses it.
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		cleanNamespace(ctx, t, "defector")
		_ = env.cs.CoreV1().Namespaces().Delete(ctx, "defector", metav1.DeleteOptions{})
	})
	applyYAML(ctx, t, `
apiVersion: v1
kind: Namespace
metadata: {name: defector, labels: {tierra.dev/tenant: research}}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: squatter, namespace: defector}
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: dev.gpu.tierra.dev
        capacity: {requests: {gpu.tierra.dev/compute: "250", gpu.tierra.dev/memory: 4Gi}}
`)
	claim, err := env.cs.ResourceV1().ResourceClaims("defector").Get(ctx, "squatter", metav1.GetOptions{})
	require.NoError(t, err)
	requireSelector(t, claim, slices.TenantSelector("research"))
	applyYAML(ctx, t, `
apiVersion: v1
kind: Namespace
metadata: {name: defector, labels: {tierra.dev/tenant: product}}
---
apiVersion: v1
kind: Pod
metadata: {name: squatter, namespace: defector}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources: {claims: [{name: gpu}]}
  resourceClaims: [{name: gpu, resourceClaimName: squatter}]
`)
	msg := waitEvent(ctx, t, "defector", "squatter", "FailedPrepareDynamicResources")
	t.Logf("refusal: %s", msg)
	for _, want := range []string{`"research"`, `"product"`, slices.StringAttribute(mine, slices.AttrUUID)} {
		assert.Contains(t, msg, want, "the refusal names both tenants and the GPU")
	}
	deletePods(ctx, t, "research", "notebook-alice", "notebook-bob")
	waitRunning(ctx, t, "defector", "squatter")
}

// The plain class gpu.tierra.dev reaches every tier's whole GPUs, but
// admission keeps each claim to its tenant's tiers whatever its class:
// under the real scheduler, research's plain-class pod gets a training GPU
// and product's (product may not claim training) gets none.
func TestPlainClassKeepsToTheTenantsTiers(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		cleanNamespace(ctx, t, "research")
		cleanNamespace(ctx, t, "product")
	})
	for _, ns := range []string{"research", "product"} {
		applyYAML(ctx, t, `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: any-gpu, namespace: `+ns+`}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly: {deviceClassName: gpu.tierra.dev}
`+podYAML(ns, "any-gpu", "any-gpu"))
	}
	claim := podClaim(ctx, t, waitRunning(ctx, t, "research", "any-gpu"))
	got := claim.Status.Allocation.Devices.Results[0]
	assert.Equal(t, "training", slices.StringAttribute(publishedDevice(ctx, t, got.Pool, got.Device), slices.AttrTier))

	poll(ctx, t, "product's plain-class pod never reported unschedulable", func(ctx context.Context) (bool, error) {
		pod, err := env.cs.CoreV1().Pods("product").Get(ctx, "any-gpu", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		require.Empty(t, pod.Spec.NodeName, "product's plain-class pod was scheduled")
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	})
	product, err := env.cs.ResourceV1().ResourceClaims("product").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, product.Items, 1)
	assert.Nil(t, product.Items[0].Status.Allocation)
	assert.Contains(t, product.Items[0].Spec.Devices.Requests[0].Exactly.Selectors[1].CEL.Expression, `tier in ["inference", "serving", "dev"]`)
}
