package report

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const exposition = `# HELP tierra_claim_device_info A prepared claim's device.
# TYPE tierra_claim_device_info gauge
tierra_claim_device_info{namespace="ml",claim="a",pod="p1",tenant="ml",tier="serving",node="n1",device="gpu-0-shared-0",gpu_uuid="GPU-0",mig_gi="",mig_ci="",sharing="TimeSlicing"} 1
tierra_claim_device_info{namespace="ml",claim="b",pod="p2",tenant="ml",tier="serving",node="n1",device="gpu-0-shared-1",gpu_uuid="GPU-0",mig_gi="",mig_ci="",sharing="TimeSlicing"} 1
tierra_claim_device_info{namespace="web",claim="c",pod="p3",tenant="web",tier="training",node="n2",device="gpu-3",gpu_uuid="GPU-3",mig_gi="",mig_ci="",sharing=""} 1
# TYPE tierra_pod_gpu_utilization_ratio gauge
tierra_pod_gpu_utilization_ratio{pod="p1",namespace="ml",tenant="ml",tier="serving",gpu_uuid="GPU-0"} 0.3
tierra_pod_gpu_utilization_ratio{pod="p2",namespace="ml",tenant="ml",tier="serving",gpu_uuid="GPU-0"} 0.5
# TYPE tierra_pod_gpu_memory_used_bytes gauge
tierra_pod_gpu_memory_used_bytes{pod="p1",namespace="ml",tenant="ml",tier="serving",gpu_uuid="GPU-0"} 2.147483648e+09
# TYPE tierra_allocated_cost_dollars_per_hour gauge
tierra_allocated_cost_dollars_per_hour{tenant="ml",namespace="ml",tier="serving"} 0.8
tierra_allocated_cost_dollars_per_hour{tenant="web",namespace="web",tier="training"} 3.5
# TYPE tierra_claim_idle gauge
tierra_claim_idle{namespace="web",claim="c",tenant="web",tier="training"} 1
tierra_claim_idle{namespace="ml",claim="a",tenant="ml",tier="serving"} 0
# TYPE tierra_claim_idle_seconds gauge
tierra_claim_idle_seconds{namespace="web",claim="c",tenant="web",tier="training"} 7200
# TYPE tierra_claim_peak_memory_used_bytes gauge
tierra_claim_peak_memory_used_bytes{namespace="web",claim="c",tenant="web",tier="training"} 1.1811160064e+10
# TYPE tierra_claim_peak_utilization_ratio gauge
tierra_claim_peak_utilization_ratio{namespace="web",claim="c",tenant="web",tier="training"} 0.09
# TYPE tierra_claim_oversized gauge
tierra_claim_oversized{namespace="web",claim="c",tenant="web",tier="training",suggested="inference 1g.18gb"} 1
# TYPE tierra_claim_rightsize_savings_dollars_per_hour gauge
tierra_claim_rightsize_savings_dollars_per_hour{namespace="web",claim="c",tenant="web",tier="training",suggested="inference 1g.18gb"} 3.06
# TYPE go_goroutines gauge
go_goroutines 12
`

func TestBuildAggregatesPerTenantAndTier(t *testing.T) {
	samples, err := ParseText(strings.NewReader(exposition))
	require.NoError(t, err)
	rep := Build(samples)
	require.Len(t, rep.Rows, 2)
	ml, web := rep.Rows[0], rep.Rows[1]
	assert.Equal(t, "ml", ml.Tenant)
	assert.Equal(t, 2, ml.Claims)
	assert.Equal(t, 2, ml.Devices)
	assert.Equal(t, 1, ml.GPUs, "two shared slots on one GPU")
	require.NotNil(t, ml.Utilization)
	assert.InDelta(t, 0.4, *ml.Utilization, 1e-9)
	assert.InDelta(t, 2<<30, ml.MemoryUsedBytes, 1)
	assert.InDelta(t, 0.8, ml.CostPerHour, 1e-9)
	assert.Nil(t, web.Utilization, "no per-pod use measured on a whole GPU")
	assert.Equal(t, 1, web.IdleClaims)
	require.Len(t, rep.RightSize, 1)
	assert.Equal(t, "peak 11.0 GiB / 9% SM: inference 1g.18gb would fit, saving $3.06/h", rep.RightSize[0].Text)
	require.Len(t, rep.Idle, 1)
	assert.Equal(t, "idle for 2h0m0s, peak 11.0 GiB / 9% SM", rep.Idle[0].Text)

	var out bytes.Buffer
	require.NoError(t, Write(&out, rep, "table"))
	assert.Contains(t, out.String(), "ml      serving")
	assert.Contains(t, out.String(), "40%")
	assert.Contains(t, out.String(), "4.30")
	assert.Contains(t, out.String(), "web/c (web, training): peak 11.0 GiB")
}

func TestScrapeAndQueryGiveTheSameReport(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(exposition)) })
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("query")
		samples, _ := ParseText(strings.NewReader(exposition))
		var parts []string
		for _, s := range samples {
			if s.Name != name {
				continue
			}
			var ls []string
			for k, v := range s.Labels {
				ls = append(ls, `"`+k+`":"`+v+`"`)
			}
			parts = append(parts, `{"metric":{"__name__":"`+name+`",`+strings.Join(ls, ",")+`},"value":[1,"`+
				strings.TrimRight(strings.TrimRight(fmtFloat(s.Value), "0"), ".")+`"]}`)
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	scraped, err := Scrape(ctx, srv.Client(), []string{strings.TrimPrefix(srv.URL, "http://")})
	require.NoError(t, err)
	queried, err := Query(ctx, srv.Client(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, Build(scraped), Build(queried))
}

func TestBadInputIsNamed(t *testing.T) {
	ctx := context.Background()
	_, err := Query(ctx, http.DefaultClient, "::bad")
	assert.ErrorContains(t, err, `--prometheus "::bad"`)
	_, err = Scrape(ctx, http.DefaultClient, []string{"http://"})
	assert.ErrorContains(t, err, `--metrics "http://"`)
	assert.ErrorContains(t, Write(&bytes.Buffer{}, Report{}, "xml"), `output "xml"`)
	_, err = parseVector("x", `{"status":"error","error":"bad_data: parse error"}`)
	assert.ErrorContains(t, err, "bad_data")
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
