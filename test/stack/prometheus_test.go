package stack

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/metrics"
)

// The Prometheus handle scrapes a real /metrics endpoint, answers vector
// and scalar queries, waits for a change, explains a timeout, and Stop ends
// its process.
func TestPrometheusScrapesAndQueries(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_value"})
	reg.MustRegister(g)
	g.Set(3)
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)

	p, err := StartPrometheus(ctx, t.TempDir(), Target{Job: "thing", Addrs: []string{addr}})
	require.NoError(t, err)
	defer func() { assert.NoError(t, p.Stop()) }()

	v, err := p.WaitFor(ctx, `test_value`, 30*time.Second, func(v model.Vector) bool { return len(v) == 1 })
	require.NoError(t, err)
	assert.Equal(t, model.SampleValue(3), v[0].Value)
	assert.Equal(t, model.LabelValue("thing"), v[0].Metric["job"])
	assert.Equal(t, model.LabelValue(addr), v[0].Metric["instance"])

	g.Set(5)
	_, err = p.WaitFor(ctx, `test_value * 2`, 30*time.Second, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 10 })
	require.NoError(t, err)
	s, err := p.Query(ctx, `scalar(test_value) + 1`)
	require.NoError(t, err)
	require.Len(t, s, 1)
	assert.Equal(t, model.SampleValue(6), s[0].Value, "a scalar answer as one sample")

	_, err = p.Query(ctx, `sum(`)
	assert.ErrorContains(t, err, "parse error", "a bad query says why")
	_, err = p.WaitFor(ctx, `test_value`, 2*time.Second, func(model.Vector) bool { return false })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "thing http://"+addr+"/metrics up", "a timeout names the targets and their health")

	pid := p.cmd.Process.Pid
	require.NoError(t, p.Stop())
	require.NoError(t, p.Stop(), "Stop again is a no-op")
	// Stop returned after the process was reaped.
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	assert.ErrorIs(t, err, os.ErrNotExist, "prometheus %d is gone", pid)
}
