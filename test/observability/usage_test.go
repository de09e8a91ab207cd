package observability

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/nodesim"
)

// notebook is a dev-tier pod of tenant research holding a quarter of a
// time-sliced GPU's compute, whose fake GPU process on the simulated node
// keeps sm percent of the GPU's SMs busy and holds memGiB of its memory.
func notebook(name string, sm, memGiB int) string {
	return fmt.Sprintf(`apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: %[1]s, namespace: research}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: dev.gpu.tierra.dev
          capacity:
            requests: {gpu.tierra.dev/compute: "250", gpu.tierra.dev/memory: 8Gi}
---
apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: research
  annotations: {%[2]s: "sm=%[3]d,memory=%[4]dGi"}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources:
      claims: [{name: gpu}]
  resourceClaims:
  - name: gpu
    resourceClaimTemplateName: %[1]s
`, name, nodesim.GPUUseAnnotation, sm, memGiB)
}

// The headline: two pods of one tenant time-slice one GPU, one
// running 30 % of its SMs and the other 50 %. GPU exporters see one busy
// GPU; Prometheus, scraping the plugin, says which tenant and pods use it
// and how much, through the chart's recording rules too.
func TestPrometheusPerTenantUseOfTimeSlicedGPU(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	stackUp(t)
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	objs, err := manifests.Decode([]byte(notebook("nb-30", 30, 2) + "---\n" + notebook("nb-50", 50, 6)))
	require.NoError(t, err)
	require.NoError(t, env.apply.Apply(ctx, objs...))
	waitRunning(ctx, t, "research", "nb-30")
	waitRunning(ctx, t, "research", "nb-50")

	info := `tierra_claim_device_info{namespace="research",tier="dev",node="l4-dev"}`
	v := waitFor(ctx, t, `count by (gpu_uuid) (`+info+`)`, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 2 })
	gpu := string(v[0].Metric["gpu_uuid"])
	require.True(t, strings.HasPrefix(gpu, "GPU-"), "one time-sliced GPU, %q", gpu)

	util := `tierra_pod_gpu_utilization_ratio{namespace="research",tenant="research",tier="dev",gpu_uuid="` + gpu + `"}`
	waitFor(ctx, t, util, labelled("pod", map[string]float64{"nb-30": 0.3, "nb-50": 0.5}))
	waitFor(ctx, t, `sum by (tenant) (tierra_pod_gpu_utilization_ratio{tier="dev"})`, labelled("tenant", map[string]float64{"research": 0.8}))
	waitFor(ctx, t, `tierra:tenant_gpu_utilization:sum{tier="dev"}`, labelled("gpu_uuid", map[string]float64{gpu: 0.8}))
	waitFor(ctx, t, `tierra:tenant_gpus_used:sum{tier="dev"}`, labelled("tenant", map[string]float64{"research": 0.8}))
	waitFor(ctx, t, `tierra:tenant_gpu_memory_used_bytes:sum{tier="dev"}`, labelled("tenant", map[string]float64{"research": 8 << 30}))
	// Each use series joins its claim <-> device series one to one: the
	// labels dcgm-exporter's join goes through name the same pod and GPU.
	joined := waitFor(ctx, t, `tierra_pod_gpu_utilization_ratio{tier="dev"} * on (namespace, claim, pod, gpu_uuid, mig_gi) group_left (device) max by (namespace, claim, pod, gpu_uuid, mig_gi, device) (tierra_claim_device_info)`,
		func(v model.Vector) bool { return len(v) == 2 })
	for _, s := range joined {
		assert.NotEmpty(t, s.Metric["device"], "%v joins its device", s.Metric)
	}

	// tierra report, reading the same Prometheus, shows the tenant's mean
	// SM use over its two pods: (30 % + 50 %) / 2.
	row, out := reportRow(ctx, t, "research", "dev")
	require.NotNil(t, row.Utilization, "tierra report -o json: %s", out)
	assert.InDelta(t, 0.4, *row.Utilization, 1e-9)
	assert.Equal(t, 2, row.Claims)
	assert.Equal(t, 1, row.GPUs, "two claims on one time-sliced GPU")
	assert.InDelta(t, float64(8<<30), row.MemoryUsedBytes, 1)
	table := tierraReport(ctx, t, "table")
	line := tableLine(table, "research", "dev")
	require.NotEmpty(t, line, "tierra report:\n%s", table)
	assert.Contains(t, strings.Fields(line), "40%", "tierra report:\n%s", table)

	// A pod gone takes its use with it.
	deletePods(ctx, t, "research", "nb-50")
	waitFor(ctx, t, `tierra:tenant_gpu_utilization:sum{tier="dev"}`, labelled("gpu_uuid", map[string]float64{gpu: 0.3}))
}
