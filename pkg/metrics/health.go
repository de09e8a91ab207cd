package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// healthMetrics are the GPU health counters (issue #15); the health state
// gauge is read at scrape time (plugin_state.go).
type healthMetrics struct {
	xids          *prometheus.CounterVec
	taintsApplied *prometheus.CounterVec
	taintsCleared *prometheus.CounterVec
}

func newHealthMetrics() *healthMetrics {
	return &healthMetrics{
		xids: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gpu_xid_events_total",
			Help: "XID errors NVML reported, by GPU, XID code and the action the TierPolicy's health table took (Ignore, NoSchedule, NoExecute).",
		}, []string{"gpu_uuid", "xid", "action"}),
		taintsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gpu_taints_applied_total",
			Help: "Health taints put on a GPU's devices, by taint key.",
		}, []string{"key"}),
		taintsCleared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gpu_taints_cleared_total",
			Help: "Health taints cleared from a GPU's devices after the quiet period, by taint key.",
		}, []string{"key"}),
	}
}

func (h *healthMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{h.xids, h.taintsApplied, h.taintsCleared}
}

// XID counts one XID event of a GPU and the action it got.
func (p *Plugin) XID(gpuUUID string, xid uint64, action string) {
	if p == nil {
		return
	}
	p.health.xids.WithLabelValues(gpuUUID, strconv.FormatUint(xid, 10), action).Inc()
}

// TaintApplied counts a health taint put on a GPU's devices.
func (p *Plugin) TaintApplied(key string) {
	if p == nil {
		return
	}
	p.health.taintsApplied.WithLabelValues(key).Inc()
}

// TaintCleared counts a health taint cleared from a GPU's devices.
func (p *Plugin) TaintCleared(key string) {
	if p == nil {
		return
	}
	p.health.taintsCleared.WithLabelValues(key).Inc()
}
