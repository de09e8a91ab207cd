package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/klog/v2/ktesting"
)

// A claim whose opaque config misspells a field gets a pod event that names
// the field, and nothing is prepared.
func TestMisspeltConfigFieldIsNamedInAnEvent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	before := cdiSpecs(t, "l4-dev")
	applyYAML(ctx, t, `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: typo, namespace: research}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: dev.gpu.tierra.dev
          capacity: {requests: {gpu.tierra.dev/compute: "100"}}
      config:
      - opaque:
          driver: gpu.tierra.dev
          parameters:
            apiVersion: tierra.dev/v1alpha1
            kind: GpuConfig
            sharing:
              strategy: TimeSlicing
              timeSlicing: {intervl: Long}
`+podYAML("research", "typo", "typo"))
	msg := waitEvent(ctx, t, "research", "typo", "FailedPrepareDynamicResources")
	t.Logf("event: %s", msg)
	assert.Contains(t, msg, `unknown field "sharing.timeSlicing.intervl"`)
	assert.Equal(t, before, cdiSpecs(t, "l4-dev"), "a refused claim left a CDI spec")
}
