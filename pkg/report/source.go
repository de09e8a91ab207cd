// Package report builds `tierra report`: per tenant and tier, the GPUs
// allocated, the use measured on them, their cost per hour, idle claims and
// right-size suggestions. It reads Tierra's metrics either from a
// Prometheus server (instant queries) or straight from the binaries'
// /metrics endpoints; both become the same Samples, so one Build serves
// both sources.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series' current value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics the report reads; the README's Metrics section defines them.
const (
	ClaimDeviceInfo = "tierra_claim_device_info"
	PodUtilization  = "tierra_pod_gpu_utilization_ratio"
	PodMemoryUsed   = "tierra_pod_gpu_memory_used_bytes"
	AllocatedCost   = "tierra_allocated_cost_dollars_per_hour"
	ClaimIdle       = "tierra_claim_idle"
	ClaimIdleFor    = "tierra_claim_idle_seconds"
	ClaimOversized  = "tierra_claim_oversized"
	ClaimSavings    = "tierra_claim_rightsize_savings_dollars_per_hour"
	ClaimPeakMemory = "tierra_claim_peak_memory_used_bytes"
	ClaimPeakUtil   = "tierra_claim_peak_utilization_ratio"
)

// Names are the metrics Build uses, in the order a Prometheus is asked.
var Names = []string{ClaimDeviceInfo, PodUtilization, PodMemoryUsed, AllocatedCost,
	ClaimIdle, ClaimIdleFor, ClaimOversized, ClaimSavings, ClaimPeakMemory, ClaimPeakUtil}

// ParseText reads the Prometheus text exposition format, keeping the
// gauges, counters and untyped series whose names are in Names.
func ParseText(r io.Reader) ([]Sample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	var out []Sample
	for _, name := range Names {
		mf, ok := families[name]
		if !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			v, ok := value(m)
			if !ok {
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, Sample{Name: name, Labels: labels, Value: v})
		}
	}
	return out, nil
}

func value(m *dto.Metric) (float64, bool) {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// Scrape reads every endpoint's /metrics (a URL without a path gets
// /metrics) and returns their samples together.
func Scrape(ctx context.Context, client *http.Client, endpoints []string) ([]Sample, error) {
	var out []Sample
	for _, ep := range endpoints {
		u, err := endpointURL(ep)
		if err != nil {
			return nil, err
		}
		body, err := get(ctx, client, u)
		if err != nil {
			return nil, err
		}
		samples, err := ParseText(strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		out = append(out, samples...)
	}
	return out, nil
}

func endpointURL(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--metrics %q: want host:port or a URL such as http://node-1:8080/metrics", ep)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	return u.String(), nil
}

// Query asks a Prometheus server (its base URL) for each of Names with an
// instant query.
func Query(ctx context.Context, client *http.Client, server string) ([]Sample, error) {
	base, err := url.Parse(server)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("--prometheus %q: want the server's URL, e.g. http://prometheus:9090", server)
	}
	var out []Sample
	for _, name := range Names {
		q := *base
		q.Path = strings.TrimSuffix(q.Path, "/") + "/api/v1/query"
		q.RawQuery = url.Values{"query": {name}}.Encode()
		body, err := get(ctx, client, q.String())
		if err != nil {
			return nil, err
		}
		samples, err := parseVector(name, body)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", name, err)
		}
		out = append(out, samples...)
	}
	return out, nil
}

// parseVector decodes an instant query's answer (resultType vector).
func parseVector(name, body string) ([]Sample, error) {
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus answered a %s, want a vector", resp.Data.ResultType)
	}
	out := make([]Sample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", s, err)
		}
		delete(r.Metric, "__name__")
		out = append(out, Sample{Name: name, Labels: r.Metric, Value: v})
	}
	return out, nil
}

func get(ctx context.Context, client *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
