package e2e

import (
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

// The training node's plugin serves /metrics: after the demo's training pod
// is prepared, its prepare is counted (exclusive, success) and each of its
// four GPUs is a claim-device info series naming the namespace, claim, pod,
// tenant, tier and GPU UUID (dcgm-exporter's UUID); after the pod is gone
// the unprepare is counted and the series are gone.
func TestPluginMetricsAfterAPrepare(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node, ns, podName = "dgx-h200-train", "research", "llm-pretrain"
	url := env.nodes[node].MetricsURL()
	require.NotEmpty(t, url, "the node's plugin serves metrics")
	requests := func(op string) float64 {
		return metricSample(t, scrapeMetrics(ctx, t, url), "tierra_plugin_requests_total",
			map[string]string{"operation": op, "mode": "exclusive", "result": "success"})
	}
	prepared, unprepared := requests("prepare"), requests("unprepare")

	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, ns) })
	applyFile(ctx, t, "demo/scenarios/training")
	pod := waitRunning(ctx, t, ns, podName)
	require.Equal(t, node, pod.Spec.NodeName)
	claim := podClaim(ctx, t, pod)

	mfs := scrapeMetrics(ctx, t, url)
	assert.Equal(t, prepared+1, metricSample(t, mfs, "tierra_plugin_requests_total",
		map[string]string{"operation": "prepare", "mode": "exclusive", "result": "success"}))
	want := map[string]bool{}
	for _, r := range claim.Status.Allocation.Devices.Results {
		uuid := slices.StringAttribute(publishedDevice(ctx, t, r.Pool, r.Device), slices.AttrUUID)
		require.NotEmpty(t, uuid)
		want[r.Device+" "+uuid] = true
	}
	got := map[string]bool{}
	for _, m := range metricSeries(mfs, "tierra_claim_device_info", map[string]string{"claim": claim.Name}) {
		l := labelMap(m)
		assert.Equal(t, map[string]string{"namespace": ns, "pod": podName, "tenant": "research", "tier": "training",
			"node": node, "sharing": "Exclusive", "mig_gi": "", "mig_ci": ""},
			map[string]string{"namespace": l["namespace"], "pod": l["pod"], "tenant": l["tenant"], "tier": l["tier"],
				"node": l["node"], "sharing": l["sharing"], "mig_gi": l["mig_gi"], "mig_ci": l["mig_ci"]})
		assert.Equal(t, 1.0, m.GetGauge().GetValue())
		got[l["device"]+" "+l["gpu_uuid"]] = true
	}
	assert.Equal(t, want, got, "one info series per allocated device, with its GPU's UUID")
	assert.GreaterOrEqual(t, metricSample(t, mfs, "tierra_plugin_prepared_devices", map[string]string{"mode": "exclusive", "tier": "training"}), 4.0)

	deletePods(ctx, t, ns, podName)
	mfs = scrapeMetrics(ctx, t, url)
	assert.Equal(t, unprepared+1, metricSample(t, mfs, "tierra_plugin_requests_total",
		map[string]string{"operation": "unprepare", "mode": "exclusive", "result": "success"}))
	assert.Empty(t, metricSeries(mfs, "tierra_claim_device_info", map[string]string{"claim": claim.Name}))
}

// scrapeMetrics reads and parses a /metrics page.
func scrapeMetrics(ctx context.Context, t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// metricSeries are the metric's series whose labels include match.
func metricSeries(mfs map[string]*dto.MetricFamily, name string, match map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mfs[name].GetMetric() {
		l := labelMap(m)
		ok := true
		for k, v := range match {
			ok = ok && l[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// metricSample is the value of the one counter or gauge series matching; 0 when
// there is none yet.
func metricSample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	t.Helper()
	ms := metricSeries(mfs, name, match)
	require.LessOrEqual(t, len(ms), 1, "%s%v", name, match)
	if len(ms) == 0 {
		return 0
	}
	if c := ms[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return ms[0].GetGauge().GetValue()
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
