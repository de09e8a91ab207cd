package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
)

// Two notebooks of one tenant time-slice one GPU; a pod of another tenant
// that the allocator puts on that GPU is refused by the plugin with both
// tenants and the GPU named, never runs beside them, and runs once they
// are gone.
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
	var phase corev1.PodPhase
	poll(ctx, t, "intruder neither refused nor running", func(ctx context.Context) (bool, error) {
		p, err := env.cs.CoreV1().Pods("product").Get(ctx, "intruder", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = p.Status.Phase
		return phase == corev1.PodRunning || len(events(ctx, "product", "intruder", "FailedPrepareDynamicResources")) > 0, nil
	})
	if phase == corev1.PodRunning {
		p, err := env.cs.CoreV1().Pods("product").Get(ctx, "intruder", metav1.GetOptions{})
		require.NoError(t, err)
		c := podClaim(ctx, t, p)
		t.Fatalf("intruder runs on %v beside research's %s", c.Status.Allocation.Devices.Results, shared.Device)
	}
	msg := waitEvent(ctx, t, "product", "intruder", "FailedPrepareDynamicResources")
	t.Logf("refusal: %s", msg)
	for _, want := range []string{"research", "product"} {
		assert.Contains(t, msg, want, "the refusal names both tenants")
	}
	intruder, err := env.cs.CoreV1().Pods("product").Get(ctx, "intruder", metav1.GetOptions{})
	require.NoError(t, err)
	claim := podClaim(ctx, t, intruder)
	if claim.Status.Allocation.Devices.Results[0].Device != shared.Device {
		t.Fatalf("the allocator put the intruder on %s, not the shared %s: the refusal above is about another GPU",
			claim.Status.Allocation.Devices.Results[0].Device, shared.Device)
	}
	assert.NotEqual(t, corev1.PodRunning, intruder.Status.Phase, "a second tenant runs on the time-sliced GPU")

	deletePods(ctx, t, "research", "notebook-alice", "notebook-bob")
	waitRunning(ctx, t, "product", "intruder")
}
