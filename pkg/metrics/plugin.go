package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the plugin's request metrics.
const (
	OpPrepare   = "prepare"
	OpUnprepare = "unprepare"

	// The modes a claim holds its GPU in: a whole GPU, a MIG instance, a
	// share under MPS or time-slicing. ModeUnknown is a claim whose devices
	// could not be identified (not allocated, no device of this node).
	ModeExclusive   = "exclusive"
	ModeMIG         = "mig"
	ModeMPS         = "mps"
	ModeTimeSlicing = "timeslicing"
	ModeUnknown     = "unknown"

	ResultSuccess = "success"
	ResultError   = "error"
)

// Reasons of tierra_plugin_errors_total (the plugin's ErrorReason maps an
// error to one).
const (
	// ReasonConfig: the claim's opaque config, allocation or devices do not
	// fit this node (invalid config, a device not published here).
	ReasonConfig = "config"
	// ReasonTenancy: a tenancy refusal (a tier the tenant may not claim, a
	// GPU held by another tenant or in a conflicting way).
	ReasonTenancy = "tenancy"
	// ReasonHardware: NVML, the GPU, MIG or the MPS daemon failed.
	ReasonHardware = "hardware"
	// ReasonAPI: a Kubernetes API call failed.
	ReasonAPI = "api"
	// ReasonCheckpoint: the checkpoint record could not be written, read or
	// locked.
	ReasonCheckpoint = "checkpoint"
	// ReasonOther: anything else (the CDI spec, a cancelled request).
	ReasonOther = "other"
)

// Causes of tierra_plugin_slice_republishes_total.
const (
	CauseNodeLabels = "node_labels"
	CausePolicy     = "policy"
	CauseHardware   = "hardware"
	CauseHealth     = "health"
	CauseReshaping  = "reshaping"
	// CauseDroppedFields: the apiserver dropped fields (a DRA feature gate
	// is off) and the devices that need them were withdrawn.
	CauseDroppedFields = "dropped_fields"
)

// requestBuckets cover a prepare of a few milliseconds (a whole GPU) to the
// tens of seconds an MPS daemon pod may take to become ready.
var requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Plugin holds the kubelet plugin's collectors. A nil *Plugin is valid: its
// methods do nothing, so code paths without metrics need no checks.
type Plugin struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inflight    map[string]prometheus.Gauge
	errors      *prometheus.CounterVec
	quarantines prometheus.Counter
	republishes *prometheus.CounterVec
	health      *healthMetrics
	state       *stateCollector
	// all are the collectors above, for Describe and Collect.
	all []prometheus.Collector
}

// NewPlugin creates the plugin's collectors and registers them with reg.
// With a nil reg nothing is registered: the Plugin is itself a
// prometheus.Collector of them all, for the caller to Register (and see the
// error of a registry that has them already).
func NewPlugin(reg prometheus.Registerer) *Plugin {
	labels := []string{"operation", "mode", "result"}
	inflight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "plugin_requests_inflight",
		Help: "Claims being prepared or unprepared now, by operation.",
	}, []string{"operation"})
	p := &Plugin{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "plugin_requests_total",
			Help: "Claims prepared or unprepared, by operation, mode (exclusive, mig, mps, timeslicing, unknown) and result.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "plugin_request_duration_seconds",
			Help:    "Time to prepare or unprepare one claim, by operation, mode and result.",
			Buckets: requestBuckets,
		}, labels),
		inflight: map[string]prometheus.Gauge{
			OpPrepare: inflight.WithLabelValues(OpPrepare), OpUnprepare: inflight.WithLabelValues(OpUnprepare),
		},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "plugin_errors_total",
			Help: "Failed prepares and unprepares by operation and reason (config, tenancy, hardware, api, checkpoint, other).",
		}, []string{"operation", "reason"}),
		quarantines: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "plugin_checkpoint_quarantines_total",
			Help: "Corrupt checkpoint records moved aside at start; the claim each held is no longer tracked.",
		}),
		republishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "plugin_slice_republishes_total",
			Help: "ResourceSlice republishes by cause (node_labels, policy, hardware, health, reshaping).",
		}, []string{"cause"}),
		health: newHealthMetrics(),
		state:  newStateCollector(),
	}
	p.all = append([]prometheus.Collector{p.requests, p.duration, inflight, p.errors, p.quarantines, p.republishes, p.state},
		p.health.collectors()...)
	if reg != nil {
		reg.MustRegister(p)
	}
	return p
}

// Describe implements prometheus.Collector.
func (p *Plugin) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range p.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (p *Plugin) Collect(ch chan<- prometheus.Metric) {
	for _, c := range p.all {
		c.Collect(ch)
	}
}

// Request is one claim's prepare or unprepare in flight; Done ends it.
type Request struct {
	p     *Plugin
	op    string
	start time.Time
}

// Start counts a claim's prepare or unprepare (op) as in flight.
func (p *Plugin) Start(op string) Request {
	if p == nil {
		return Request{}
	}
	p.inflight[op].Inc()
	return Request{p: p, op: op, start: time.Now()}
}

// Done records the request's outcome: reason is "" on success, else one of
// the Reason constants.
func (r Request) Done(mode, reason string) {
	p := r.p
	if p == nil {
		return
	}
	p.inflight[r.op].Dec()
	result := ResultSuccess
	if reason != "" {
		result = ResultError
		p.errors.WithLabelValues(r.op, reason).Inc()
	}
	p.requests.WithLabelValues(r.op, mode, result).Inc()
	p.duration.WithLabelValues(r.op, mode, result).Observe(time.Since(r.start).Seconds())
}

// CheckpointQuarantined counts n corrupt checkpoint records moved aside.
func (p *Plugin) CheckpointQuarantined(n int) {
	if p == nil {
		return
	}
	p.quarantines.Add(float64(n))
}

// Republished counts a republish of the node's ResourceSlices.
func (p *Plugin) Republished(cause string) {
	if p == nil {
		return
	}
	p.republishes.WithLabelValues(cause).Inc()
}

// SetState gives the scrape-time collector what it reads: the prepared
// claims' devices, the GPUs' health and the MPS daemons. Unset sources
// export nothing.
func (p *Plugin) SetState(s State) {
	if p == nil {
		return
	}
	p.state.set(s)
}
