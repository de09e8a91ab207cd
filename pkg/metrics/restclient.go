package metrics

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// registerRESTClient hooks client-go's request metrics (once per process)
// and adds their collectors to reg.
func registerRESTClient(reg prometheus.Registerer) {
	restOnce.Do(func() {
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestLatency: latencyAdapter{},
			RequestResult:  resultAdapter{},
		})
	})
	reg.MustRegister(restReqs, restLatency)
}

type latencyAdapter struct{}

func (latencyAdapter) Observe(_ context.Context, verb string, u url.URL, d time.Duration) {
	restLatency.WithLabelValues(verb, u.Host).Observe(d.Seconds())
}

type resultAdapter struct{}

func (resultAdapter) Increment(_ context.Context, code, method, host string) {
	restReqs.WithLabelValues(code, method, host).Inc()
}
