package metrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNilPluginDoesNothing(t *testing.T) {
	var p *Plugin
	assert.NotPanics(t, func() {
		p.Start(OpPrepare).Done(ModeMIG, ReasonConfig)
		p.CheckpointQuarantined(2)
		p.Republished(CausePolicy)
		p.XID("GPU-1", 79, "NoSchedule")
		p.TaintApplied("k")
		p.TaintCleared("k")
		p.SetState(State{})
	})
}

func TestRequestsCountByOperationModeAndResult(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewPlugin(reg)
	p.Start(OpPrepare).Done(ModeMIG, "")
	p.Start(OpPrepare).Done(ModeMIG, "")
	inflight := p.Start(OpPrepare)
	p.Start(OpPrepare).Done(ModeExclusive, ReasonTenancy)
	p.Start(OpUnprepare).Done(ModeMPS, ReasonHardware)

	assert.Equal(t, 2.0, testutil.ToFloat64(p.requests.WithLabelValues(OpPrepare, ModeMIG, ResultSuccess)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.requests.WithLabelValues(OpPrepare, ModeExclusive, ResultError)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.requests.WithLabelValues(OpUnprepare, ModeMPS, ResultError)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.errors.WithLabelValues(OpPrepare, ReasonTenancy)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.errors.WithLabelValues(OpUnprepare, ReasonHardware)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.inflight[OpPrepare]))
	assert.Equal(t, 0.0, testutil.ToFloat64(p.inflight[OpUnprepare]))
	inflight.Done(ModeTimeSlicing, "")
	assert.Equal(t, 0.0, testutil.ToFloat64(p.inflight[OpPrepare]))
	assert.Equal(t, 4, testutil.CollectAndCount(p.duration), "one histogram per operation, mode and result")

	p.CheckpointQuarantined(3)
	p.Republished(CauseHealth)
	p.Republished(CauseHealth)
	assert.Equal(t, 3.0, testutil.ToFloat64(p.quarantines))
	assert.Equal(t, 2.0, testutil.ToFloat64(p.republishes.WithLabelValues(CauseHealth)))
	_, err := reg.Gather()
	require.NoError(t, err, "the pedantic registry accepts every collector")
}

func TestHealthCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewPlugin(reg)
	p.XID("GPU-1", 79, "NoSchedule")
	p.XID("GPU-1", 79, "NoSchedule")
	p.XID("GPU-1", 13, "Ignore")
	p.TaintApplied("gpu.tierra.dev/xid")
	p.TaintCleared("gpu.tierra.dev/xid")
	want := `
# HELP tierra_gpu_xid_events_total XID errors NVML reported, by GPU, XID code and the action the TierPolicy's health table took (Ignore, NoSchedule, NoExecute).
# TYPE tierra_gpu_xid_events_total counter
tierra_gpu_xid_events_total{action="Ignore",gpu_uuid="GPU-1",xid="13"} 1
tierra_gpu_xid_events_total{action="NoSchedule",gpu_uuid="GPU-1",xid="79"} 2
# HELP tierra_gpu_taints_applied_total Health taints put on a GPU's devices, by taint key.
# TYPE tierra_gpu_taints_applied_total counter
tierra_gpu_taints_applied_total{key="gpu.tierra.dev/xid"} 1
# HELP tierra_gpu_taints_cleared_total Health taints cleared from a GPU's devices after the quiet period, by taint key.
# TYPE tierra_gpu_taints_cleared_total counter
tierra_gpu_taints_cleared_total{key="gpu.tierra.dev/xid"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tierra_gpu_xid_events_total", "tierra_gpu_taints_applied_total", "tierra_gpu_taints_cleared_total"))
}

func TestStateIsReadAtScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewPlugin(reg)
	devices := []ClaimDevice{
		{Namespace: "team-a", Claim: "train", Pods: []string{"train-0"}, Tenant: "a", Tier: "training", Node: "n1",
			Device: "gpu-0", GPUUUID: "GPU-0", Sharing: "Exclusive", Mode: ModeExclusive},
		{Namespace: "team-b", Claim: "infer", Pods: []string{"p1", "p2"}, Tenant: "b", Tier: "inference", Node: "n1",
			Device: "gpu-1-mig-1g-0", GPUUUID: "GPU-1", MIGGI: "7", MIGCI: "0", Sharing: "Exclusive", Mode: ModeMIG},
		// The same device twice (two requests): one series.
		{Namespace: "team-b", Claim: "infer", Pods: []string{"p1", "p2"}, Tenant: "b", Tier: "inference", Node: "n1",
			Device: "gpu-1-mig-1g-0", GPUUUID: "GPU-1", MIGGI: "7", MIGCI: "0", Sharing: "Exclusive", Mode: ModeMIG},
		{Namespace: "team-b", Claim: "solo", Tenant: "b", Tier: "inference", Node: "n1",
			Device: "gpu-2-ts-0", GPUUUID: "GPU-2", Sharing: "TimeSlicing", Mode: ModeTimeSlicing},
	}
	p.SetState(State{
		ClaimDevices: func() []ClaimDevice { return devices },
		GPUHealth: func() []GPUHealth {
			return []GPUHealth{{UUID: "GPU-0", State: HealthHealthy}, {UUID: "GPU-1", State: HealthUnhealthy}}
		},
		MPSDaemons: func() (int, error) { return 2, nil },
	})
	want := `
# HELP tierra_claim_device_info One series per prepared device of a claim and pod (value 1); join with dcgm-exporter on UUID (gpu_uuid) and GPU_I_ID (mig_gi).
# TYPE tierra_claim_device_info gauge
tierra_claim_device_info{claim="infer",device="gpu-1-mig-1g-0",gpu_uuid="GPU-1",mig_ci="0",mig_gi="7",namespace="team-b",node="n1",pod="p1",sharing="Exclusive",tenant="b",tier="inference"} 1
tierra_claim_device_info{claim="infer",device="gpu-1-mig-1g-0",gpu_uuid="GPU-1",mig_ci="0",mig_gi="7",namespace="team-b",node="n1",pod="p2",sharing="Exclusive",tenant="b",tier="inference"} 1
tierra_claim_device_info{claim="solo",device="gpu-2-ts-0",gpu_uuid="GPU-2",mig_ci="",mig_gi="",namespace="team-b",node="n1",pod="",sharing="TimeSlicing",tenant="b",tier="inference"} 1
tierra_claim_device_info{claim="train",device="gpu-0",gpu_uuid="GPU-0",mig_ci="",mig_gi="",namespace="team-a",node="n1",pod="train-0",sharing="Exclusive",tenant="a",tier="training"} 1
# HELP tierra_plugin_prepared_devices Devices of prepared claims on this node, by mode and tier.
# TYPE tierra_plugin_prepared_devices gauge
tierra_plugin_prepared_devices{mode="exclusive",tier="training"} 1
tierra_plugin_prepared_devices{mode="mig",tier="inference"} 2
tierra_plugin_prepared_devices{mode="timeslicing",tier="inference"} 1
# HELP tierra_plugin_mps_daemons MPS control daemons the plugin runs (one per GPU shared under MPS).
# TYPE tierra_plugin_mps_daemons gauge
tierra_plugin_mps_daemons 2
# HELP tierra_gpu_health_state GPU health, one-hot: 1 on the GPU's current state (healthy, unhealthy, unknown), 0 on the others.
# TYPE tierra_gpu_health_state gauge
tierra_gpu_health_state{gpu_uuid="GPU-0",state="healthy"} 1
tierra_gpu_health_state{gpu_uuid="GPU-0",state="unhealthy"} 0
tierra_gpu_health_state{gpu_uuid="GPU-0",state="unknown"} 0
tierra_gpu_health_state{gpu_uuid="GPU-1",state="healthy"} 0
tierra_gpu_health_state{gpu_uuid="GPU-1",state="unhealthy"} 1
tierra_gpu_health_state{gpu_uuid="GPU-1",state="unknown"} 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "tierra_claim_device_info",
		"tierra_plugin_prepared_devices", "tierra_plugin_mps_daemons", "tierra_gpu_health_state"))

	// The next scrape reads the state again: the claims are gone, the
	// daemons cannot be counted.
	devices = nil
	p.SetState(State{ClaimDevices: func() []ClaimDevice { return devices }, MPSDaemons: func() (int, error) { return 0, errors.New("boom") }})
	n, err := testutil.GatherAndCount(reg, "tierra_claim_device_info", "tierra_plugin_mps_daemons", "tierra_gpu_health_state")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestPluginMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewPlugin(reg)
	p.Start(OpPrepare).Done(ModeMIG, ReasonConfig)
	p.Republished(CauseHardware)
	p.XID("GPU-1", 79, "NoSchedule")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// BenchmarkRequest is what the prepare path pays per claim for its
// metrics: the in-flight gauge, the counter and the histogram.
func BenchmarkRequest(b *testing.B) {
	p := NewPlugin(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		p.Start(OpPrepare).Done(ModeExclusive, "")
	}
}
