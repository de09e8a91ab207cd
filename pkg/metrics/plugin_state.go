package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// State is what the plugin's scrape-time collector reads at every scrape,
// so that the series are right after a restart: they come from the
// checkpoint, the health tracker and the MPS daemons, not from counting
// events. A nil func exports nothing.
type State struct {
	// ClaimDevices lists every device of every prepared claim.
	ClaimDevices func() []ClaimDevice
	// GPUHealth lists the node's GPUs with their health.
	GPUHealth func() []GPUHealth
	// MPSDaemons counts the MPS control daemons running; on error the
	// gauge is left out of that scrape.
	MPSDaemons func() (int, error)
}

// ClaimDevice is one prepared device of a claim, as
// tierra_claim_device_info labels it.
type ClaimDevice struct {
	Namespace, Claim, Tenant, Tier, Node, Device string
	// Pods are the pods the claim was reserved for when it was prepared;
	// none gives one series with pod="".
	Pods []string
	// GPUUUID is the physical GPU's UUID (the parent of a MIG instance),
	// dcgm-exporter's UUID label.
	GPUUUID string
	// MIGGI and MIGCI are the MIG GPU and compute instance IDs, "" when
	// the device is not a MIG instance; MIGGI is dcgm-exporter's GPU_I_ID.
	MIGGI, MIGCI string
	// Sharing is Exclusive, TimeSlicing or MPS; Mode one of the Mode…
	// constants.
	Sharing, Mode string
}

// Health states of tierra_gpu_health_state.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

var healthStates = []string{HealthHealthy, HealthUnhealthy, HealthUnknown}

// GPUHealth is one GPU's health: State is one of the Health… constants.
type GPUHealth struct {
	UUID, State string
}

var (
	claimDeviceInfoDesc = prometheus.NewDesc(Namespace+"_claim_device_info",
		"One series per prepared device of a claim and pod (value 1); join with dcgm-exporter on UUID (gpu_uuid) and GPU_I_ID (mig_gi).",
		[]string{"namespace", "claim", "pod", "tenant", "tier", "node", "device", "gpu_uuid", "mig_gi", "mig_ci", "sharing"}, nil)
	preparedDevicesDesc = prometheus.NewDesc(Namespace+"_plugin_prepared_devices",
		"Devices of prepared claims on this node, by mode and tier.", []string{"mode", "tier"}, nil)
	mpsDaemonsDesc = prometheus.NewDesc(Namespace+"_plugin_mps_daemons",
		"MPS control daemons the plugin runs (one per GPU shared under MPS).", nil, nil)
	gpuHealthDesc = prometheus.NewDesc(Namespace+"_gpu_health_state",
		"GPU health, one-hot: 1 on the GPU's current state (healthy, unhealthy, unknown), 0 on the others.",
		[]string{"gpu_uuid", "state"}, nil)
)

// stateCollector is the prometheus.Collector that reads State at scrape.
type stateCollector struct {
	mu    sync.Mutex
	state State
}

func newStateCollector() *stateCollector { return &stateCollector{} }

func (c *stateCollector) set(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = s
}

func (c *stateCollector) get() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{claimDeviceInfoDesc, preparedDevicesDesc, mpsDaemonsDesc, gpuHealthDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.get()
	if s.ClaimDevices != nil {
		collectClaims(ch, s.ClaimDevices())
	}
	if s.GPUHealth != nil {
		collectHealth(ch, s.GPUHealth())
	}
	if s.MPSDaemons != nil {
		if n, err := s.MPSDaemons(); err == nil {
			ch <- prometheus.MustNewConstMetric(mpsDaemonsDesc, prometheus.GaugeValue, float64(n))
		}
	}
}

// collectClaims sends one info series per device and pod (duplicates, e.g.
// one device in two requests, once) and the devices per mode and tier.
func collectClaims(ch chan<- prometheus.Metric, devices []ClaimDevice) {
	seen := map[string]bool{}
	type modeTier struct{ mode, tier string }
	counts := map[modeTier]int{}
	for _, d := range devices {
		counts[modeTier{d.Mode, d.Tier}]++
		pods := d.Pods
		if len(pods) == 0 {
			pods = []string{""}
		}
		for _, pod := range pods {
			labels := []string{d.Namespace, d.Claim, pod, d.Tenant, d.Tier, d.Node, d.Device, d.GPUUUID, d.MIGGI, d.MIGCI, d.Sharing}
			key := strings.Join(labels, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			ch <- prometheus.MustNewConstMetric(claimDeviceInfoDesc, prometheus.GaugeValue, 1, labels...)
		}
	}
	for mt, n := range counts {
		ch <- prometheus.MustNewConstMetric(preparedDevicesDesc, prometheus.GaugeValue, float64(n), mt.mode, mt.tier)
	}
}

func collectHealth(ch chan<- prometheus.Metric, gpus []GPUHealth) {
	seen := map[string]bool{}
	for _, g := range gpus {
		if seen[g.UUID] {
			continue
		}
		seen[g.UUID] = true
		for _, state := range healthStates {
			v := 0.0
			if state == g.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(gpuHealthDesc, prometheus.GaugeValue, v, g.UUID, state)
		}
	}
}
