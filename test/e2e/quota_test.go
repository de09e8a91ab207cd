package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
)

// A ResourceQuota on a tier's class counts that tier's devices only: the
// fifth dev claim is refused, a training claim is not.
func TestQuotaPerTierClass(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const ns = "quota"
	applyYAML(ctx, t, `
apiVersion: v1
kind: Namespace
metadata: {name: quota}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: dev-gpus, namespace: quota}
spec:
  hard:
    dev.gpu.tierra.dev.deviceclass.resource.k8s.io/devices: "4"
`)
	t.Cleanup(func() {
		_ = env.cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
	})
	// Admission enforces a quota once its controller has computed it.
	poll(ctx, t, "quota never computed", func(ctx context.Context) (bool, error) {
		q, err := env.cs.CoreV1().ResourceQuotas(ns).Get(ctx, "dev-gpus", metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0, nil
	})
	claim := func(name, class string) string {
		return fmt.Sprintf(`
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: %s, namespace: quota}
spec:
  devices:
    requests: [{name: gpu, exactly: {deviceClassName: %s}}]
`, name, class)
	}
	for i := range 4 {
		applyYAML(ctx, t, claim(fmt.Sprintf("dev-%d", i), "dev.gpu.tierra.dev"))
	}
	err := applyErr(ctx, claim("dev-4", "dev.gpu.tierra.dev"))
	require.Error(t, err, "the fifth dev claim must be refused")
	assert.Contains(t, err.Error(), "exceeded quota")
	assert.Contains(t, err.Error(), "dev.gpu.tierra.dev.deviceclass.resource.k8s.io/devices")
	require.NoError(t, applyErr(ctx, claim("train-0", "training.gpu.tierra.dev")), "another tier's class is not counted")
	q, err := env.cs.CoreV1().ResourceQuotas(ns).Get(ctx, "dev-gpus", metav1.GetOptions{})
	require.NoError(t, err)
	used := q.Status.Used[corev1.ResourceName("dev.gpu.tierra.dev.deviceclass.resource.k8s.io/devices")]
	assert.Equal(t, int64(4), used.Value(), "quota used")
}
