package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

func TestServeAnswersMetricsUntilTheContextEnds(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	reg := NewRegistry()
	restReqs.WithLabelValues("200", "GET", "test").Inc()
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + Path)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `rest_client_requests_total{code="200",host="test",method="GET"}`)
	assert.Contains(t, string(body), "go_goroutines")
}

func TestServeRefusesABadAddress(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	_, err := Serve(ctx, "not-an-address", NewRegistry())
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), `metrics address "not-an-address"`), err.Error())
}

func TestServeWithNoAddressServesNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	addr, err := Serve(ctx, "", NewRegistry())
	require.NoError(t, err)
	assert.Empty(t, addr)
}

func TestTwoRegistriesBothGetTheRESTClientCollectors(t *testing.T) {
	for _, reg := range []*prometheus.Registry{NewRegistry(), NewRegistry()} {
		restReqs.WithLabelValues("201", "POST", "test").Inc()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		assert.Contains(t, names, "rest_client_requests_total")
	}
}
