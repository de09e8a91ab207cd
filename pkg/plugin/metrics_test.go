package plugin_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func withMetrics() func(*harness) {
	return func(h *harness) { h.metrics = prometheus.NewRegistry() }
}

// series gathers the metric from reg: each series' labels as
// "k=v,k=v" (sorted by name) → its value (a counter's, gauge's or a
// histogram's sample count).
func series(t testing.TB, reg prometheus.Gatherer, name string) map[string]float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			out[strings.Join(labels, ",")] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func reservedFor(claim *resourceapi.ResourceClaim, pod, uid string) *resourceapi.ResourceClaim {
	claim.Status.ReservedFor = append(claim.Status.ReservedFor,
		resourceapi.ResourceClaimConsumerReference{Resource: "pods", Name: pod, UID: types.UID(uid)})
	return claim
}

// Prepares and unprepares are counted by operation, mode and result, a bad
// config by reason; every prepared device is a claim-device info series
// with its pod, tenant, tier and GPU, read from the checkpoint, so a
// restarted plugin exports the same.
func TestMetricsOfPreparedClaims(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference, withMetrics())
	train := h.claim(t, reservedFor(tierratest.MakeClaim("train", "team-a").UID("uid-train").Request("gpu", tiers.ClassGPU).Obj(),
		"train-0", "pod-uid-0"), nil)
	infer := h.claim(t, reservedFor(tierratest.MakeClaim("infer", "team-a").UID("uid-infer").Request("mig", tiers.ClassMIG).
		Selector(`device.attributes["gpu.tierra.dev"].migProfile == "3g.71gb"`).Obj(), "infer-0", "pod-uid-1"), nil)
	bad := h.claim(t, tierratest.MakeClaim("bad", "ns").UID("uid-bad").Request("gpu", tiers.ClassGPU).
		Config(`{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"Bogus"}}`).Obj(), nil)
	resp, err := h.prepare(train, infer, bad)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-train"].Error)
	require.Empty(t, resp.Claims["uid-infer"].Error)
	require.NotEmpty(t, resp.Claims["uid-bad"].Error)

	assert.Equal(t, map[string]float64{
		"mode=exclusive,operation=prepare,result=error":   1,
		"mode=exclusive,operation=prepare,result=success": 1,
		"mode=mig,operation=prepare,result=success":       1,
	}, series(t, h.metrics, "tierra_plugin_requests_total"))
	assert.Equal(t, map[string]float64{"operation=prepare,reason=config": 1}, series(t, h.metrics, "tierra_plugin_errors_total"))
	assert.Len(t, series(t, h.metrics, "tierra_plugin_request_duration_seconds"), 3)
	assert.Equal(t, 0.0, series(t, h.metrics, "tierra_plugin_requests_inflight")["operation=prepare"])

	gpu0, gpu4 := h.gpu(t, 0), h.gpu(t, 4)
	require.Len(t, gpu4.MIG.Instances, 1)
	require.Len(t, gpu4.MIG.Instances[0].ComputeInstances, 1)
	mig := gpu4.MIG.Instances[0]
	wantInfo := map[string]float64{
		"claim=train,device=gpu-0,gpu_uuid=" + gpu0.UUID + ",mig_ci=,mig_gi=,namespace=team-a,node=node-1,pod=train-0,sharing=Exclusive,tenant=research,tier=inference": 1,
		"claim=infer,device=gpu-4-3g-71gb-4,gpu_uuid=" + gpu4.UUID + ",mig_ci=" + strconv.Itoa(mig.ComputeInstances[0].ID) + ",mig_gi=" + strconv.Itoa(mig.GPUInstanceID) +
			",namespace=team-a,node=node-1,pod=infer-0,sharing=Exclusive,tenant=research,tier=inference": 1,
	}
	assert.Equal(t, wantInfo, series(t, h.metrics, "tierra_claim_device_info"))
	wantDevices := map[string]float64{"mode=exclusive,tier=inference": 1, "mode=mig,tier=inference": 1}
	assert.Equal(t, wantDevices, series(t, h.metrics, "tierra_plugin_prepared_devices"))

	h.metrics = prometheus.NewRegistry()
	h.restart(t)
	assert.Equal(t, wantInfo, series(t, h.metrics, "tierra_claim_device_info"), "after a restart, from the checkpoint")
	assert.Equal(t, wantDevices, series(t, h.metrics, "tierra_plugin_prepared_devices"))

	_, err = h.unprepare(train, infer)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{
		"mode=exclusive,operation=unprepare,result=success": 1,
		"mode=mig,operation=unprepare,result=success":       1,
	}, series(t, h.metrics, "tierra_plugin_requests_total"))
	assert.Empty(t, series(t, h.metrics, "tierra_claim_device_info"))
	assert.Empty(t, series(t, h.metrics, "tierra_plugin_prepared_devices"))
}

// A cross-tenant refusal counts as a tenancy error of a time-sliced
// prepare; the GPUs are reported healthy once the events are watched.
func TestMetricsOfATenancyRefusal(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierDev, withMetrics())
	class := tiers.ClassName(v1alpha1.TierDev)
	a := h.claim(t, tierratest.MakeClaim("a", "team-a").UID("uid-a").Request("gpu", class).Obj(), nil)
	b := h.claim(t, tierratest.MakeClaim("b", "team-b").UID("uid-b").Request("gpu", class).Obj(), nil)
	_, err := h.prepare(a)
	require.NoError(t, err)
	resp, err := h.prepare(b)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Claims["uid-b"].Error)
	assert.Equal(t, map[string]float64{
		"mode=timeslicing,operation=prepare,result=success": 1,
		"mode=timeslicing,operation=prepare,result=error":   1,
	}, series(t, h.metrics, "tierra_plugin_requests_total"))
	assert.Equal(t, map[string]float64{"operation=prepare,reason=tenancy": 1}, series(t, h.metrics, "tierra_plugin_errors_total"))
	assert.Equal(t, map[string]float64{"mode=timeslicing,tier=dev": 1}, series(t, h.metrics, "tierra_plugin_prepared_devices"))
}

// XID 79 is counted with its action, taints the GPU (counted), makes it
// unhealthy and republishes for health; after the quiet period the taint
// is counted cleared and the GPU is healthy again.
func TestMetricsOfGPUHealth(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()), withMetrics())
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	uuid := h.gpu(t, 2).UUID
	stateOf := func(state string) float64 {
		return series(t, h.metrics, "tierra_gpu_health_state")["gpu_uuid="+uuid+",state="+state]
	}
	require.Equal(t, 1.0, stateOf("healthy"))
	require.Len(t, series(t, h.metrics, "tierra_gpu_health_state"), 8*3, "one-hot over the three states for each of 8 GPUs")

	require.NoError(t, h.gpus.InjectXID(2, 13))
	require.NoError(t, h.gpus.InjectXID(2, 79))
	require.Eventually(t, func() bool { return stateOf("unhealthy") == 1 }, 2*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0.0, stateOf("healthy"))
	assert.Equal(t, map[string]float64{
		"action=Ignore,gpu_uuid=" + uuid + ",xid=13":     1,
		"action=NoSchedule,gpu_uuid=" + uuid + ",xid=79": 1,
	}, series(t, h.metrics, "tierra_gpu_xid_events_total"))
	assert.Equal(t, map[string]float64{"key=" + health.XIDTaintKey: 1}, series(t, h.metrics, "tierra_gpu_taints_applied_total"))
	require.Eventually(t, func() bool {
		return series(t, h.metrics, "tierra_plugin_slice_republishes_total")["cause=health"] >= 1
	}, 2*time.Second, 10*time.Millisecond)

	require.Eventually(t, func() bool { return stateOf("healthy") == 1 }, 10*time.Second, 10*time.Millisecond)
	// The clear is counted, then republished, just after the tracker clears.
	require.Eventually(t, func() bool {
		return series(t, h.metrics, "tierra_plugin_slice_republishes_total")["cause=health"] == 2
	}, 2*time.Second, 10*time.Millisecond, "tainted, then cleared")
	assert.Equal(t, map[string]float64{"key=" + health.XIDTaintKey: 1}, series(t, h.metrics, "tierra_gpu_taints_cleared_total"))
}

// A quarantined checkpoint record is counted; the plugin serves /metrics
// on its address (port 0: the one bound), with the Go collectors.
func TestMetricsServedWithQuarantines(t *testing.T) {
	state := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(state, "checkpoint"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(state, "checkpoint", "uid-bad.json"), []byte("{not json"), 0o600))
	h := startPlugin(t, v1alpha1.TierInference, func(h *harness) { h.cfg.StateDir, h.cfg.MetricsAddress = state, "127.0.0.1:0" })
	require.NotEmpty(t, h.driver.MetricsAddress())
	body := scrape(t, h.ctx, "http://"+h.driver.MetricsAddress()+"/metrics")
	for _, s := range []string{"tierra_plugin_checkpoint_quarantines_total 1", `tierra_plugin_requests_inflight{operation="prepare"} 0`,
		"tierra_gpu_health_state", "go_goroutines"} {
		assert.Contains(t, body, s)
	}
}

func scrape(t testing.TB, ctx context.Context, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(data)
}

// One registry cannot take a second plugin's collectors: Start says so.
func TestMetricsRegistryTakenTwiceIsAnError(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference, withMetrics())
	cfg := h.cfg
	cfg.PluginDataDir, cfg.RegistrarDir = shortTempDir(t), shortTempDir(t)
	_, err := plugin.Start(h.ctx, cfg, plugin.Deps{Client: h.client, GPUs: h.gpus, Policy: h.policy, Runner: h.runner,
		Metrics: h.metrics})
	require.ErrorContains(t, err, "register the plugin's metrics")
}
