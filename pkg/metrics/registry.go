// Package metrics holds Tierra's Prometheus collectors and the one
// /metrics endpoint each binary serves.
//
// Every binary builds one Registry with NewRegistry: Go runtime and process
// collectors, client-go's REST client metrics (rest_client_*), and the
// collectors of that binary (plugin.go, controller.go, …), each registered
// by the component that owns what it counts. Metric names start with
// Namespace ("tierra_"); the README lists each with its labels.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Namespace prefixes every Tierra metric name.
const Namespace = "tierra"

// Path is where Serve answers with the metrics.
const Path = "/metrics"

// NewRegistry returns a registry with the Go runtime, process and
// client-go REST client collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	registerRESTClient(reg)
	return reg
}

// Serve answers Path (and /healthz) on addr until ctx ends. An empty addr
// serves nothing and returns nil at once. The listener is opened before
// Serve returns, so a bad address is reported to the caller; the returned
// address is the one bound (useful with port 0).
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) (string, error) {
	if addr == "" {
		return "", nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: errorLog{klog.FromContext(ctx)}}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger := klog.FromContext(ctx)
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Metrics server stopped", "address", lis.Addr().String())
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("Serving metrics", "address", lis.Addr().String(), "path", Path)
	return lis.Addr().String(), nil
}

// errorLog sends promhttp's errors to the contextual logger.
type errorLog struct{ logger klog.Logger }

func (l errorLog) Println(v ...any) {
	l.logger.Error(nil, "Metrics handler", "detail", fmt.Sprint(v...))
}

// restOnce guards client-go's process-wide metrics hooks, which can be
// set only once; later registries get the same collectors.
var (
	restOnce sync.Once
	restReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rest_client_requests_total",
		Help: "API requests by HTTP status code, method and host (client-go).",
	}, []string{"code", "method", "host"})
	restLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rest_client_request_duration_seconds",
		Help:    "API request latency by verb and host (client-go).",
		Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60},
	}, []string{"verb", "host"})
)
