package metrics

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

// DefaultUsageWindow is how far back a scrape averages NVML's per-process
// SM samples.
const DefaultUsageWindow = 30 * time.Second

// usageLabels are the labels of the per-pod series; they join with
// tierra_claim_device_info on (namespace, claim, pod, gpu_uuid, mig_gi).
var usageLabels = []string{"namespace", "pod", "claim", "tenant", "tier", "gpu_uuid", "mig_gi", "mig_ci"}

var (
	podGPUUtilizationDesc = prometheus.NewDesc(Namespace+"_pod_gpu_utilization_ratio",
		"Share of the GPU's SMs the pod's processes kept busy (0-1, summed over them, capped at 1), averaged over the scrape "+
			"window from NVML's per-process samples; absent inside MIG instances, where NVML takes none.", usageLabels, nil)
	podGPUMemoryDesc = prometheus.NewDesc(Namespace+"_pod_gpu_memory_used_bytes",
		"GPU memory the pod's processes hold on the GPU or MIG instance (NVML per-process used memory).", usageLabels, nil)
	unattributedMemoryDesc = prometheus.NewDesc(Namespace+"_gpu_unattributed_memory_used_bytes",
		"GPU memory held by processes in no pod of a claim Tierra prepared here (host processes, the MPS server, other drivers' pods).",
		[]string{"gpu_uuid", "mig_gi", "mig_ci"}, nil)
	unattributedProcessesDesc = prometheus.NewDesc(Namespace+"_gpu_unattributed_processes",
		"Compute processes on the GPU in no pod of a claim Tierra prepared here.", []string{"gpu_uuid", "mig_gi", "mig_ci"}, nil)
)

// UsageOptions configure NewUsageCollector. Processes and Claims are
// required.
type UsageOptions struct {
	// Processes reads per-process use: the plugin's nvgpu machine
	// (nvgpu.ProcessUseReader).
	Processes usage.ProcessSource
	// Claims lists the prepared claims with their pods.
	Claims usage.ClaimLister
	// Pods maps PIDs to pods; nil is podproc.Mapper{} over /proc.
	Pods usage.PodMapper
	// Window is how far back each scrape averages SM samples; 0 means
	// DefaultUsageWindow.
	Window time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Logger receives read errors; the zero value discards them.
	Logger klog.Logger
}

// UsageCollector exports per-pod GPU use, computed at scrape time: NVML's
// per-process data, each PID's pod from /proc/<pid>/cgroup, and the
// prepared claims that name each pod's namespace, tenant and tier.
type UsageCollector struct {
	opts   UsageOptions
	errors *prometheus.CounterVec

	mu sync.Mutex // one scrape at a time reads NVML
}

var _ prometheus.Collector = (*UsageCollector)(nil)

// NewUsageCollector returns the collector; register it on the plugin's
// registry.
func NewUsageCollector(opts UsageOptions) (*UsageCollector, error) {
	if opts.Processes == nil || opts.Claims == nil {
		return nil, errors.New("usage collector: Processes and Claims are required")
	}
	if opts.Pods == nil {
		opts.Pods = podproc.Mapper{}
	}
	if opts.Window <= 0 {
		opts.Window = DefaultUsageWindow
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &UsageCollector{opts: opts, errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "pod_gpu_usage_errors_total",
		Help: "Failed reads behind the per-pod GPU use series: source nvml (the whole scrape's use is missing) or cgroup " +
			"(one process could not be mapped to its pod).",
	}, []string{"source"})}, nil
}

// Describe implements prometheus.Collector.
func (c *UsageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{podGPUUtilizationDesc, podGPUMemoryDesc, unattributedMemoryDesc, unattributedProcessesDesc} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector. A failed NVML read leaves the
// use series out of that scrape (and counts the error) rather than failing
// the whole scrape.
func (c *UsageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx := klog.NewContext(context.Background(), c.opts.Logger)
	since := c.opts.Clock.Now().Add(-c.opts.Window)
	a, _, err := usage.Read(ctx, c.opts.Processes, c.opts.Pods, c.opts.Claims, since)
	if err != nil {
		c.opts.Logger.Error(err, "Reading per-pod GPU use")
		c.errors.WithLabelValues("nvml").Inc()
	}
	if a.MapErrors > 0 {
		c.errors.WithLabelValues("cgroup").Add(float64(a.MapErrors))
	}
	for _, u := range a.Pods {
		gi, ci := migLabels(u.GPU)
		labels := []string{u.Claim.Namespace, u.Pod.Name, u.Claim.Name, u.Claim.Tenant, u.Claim.Tier, u.GPU.UUID, gi, ci}
		if u.SMKnown {
			ch <- prometheus.MustNewConstMetric(podGPUUtilizationDesc, prometheus.GaugeValue, u.SMRatio, labels...)
		}
		if u.MemoryKnown {
			ch <- prometheus.MustNewConstMetric(podGPUMemoryDesc, prometheus.GaugeValue, float64(u.MemoryBytes), labels...)
		}
	}
	for _, u := range a.Unattributed {
		gi, ci := migLabels(u.GPU)
		ch <- prometheus.MustNewConstMetric(unattributedMemoryDesc, prometheus.GaugeValue, float64(u.MemoryBytes), u.GPU.UUID, gi, ci)
		ch <- prometheus.MustNewConstMetric(unattributedProcessesDesc, prometheus.GaugeValue, float64(u.Processes), u.GPU.UUID, gi, ci)
	}
	c.errors.Collect(ch)
}

// migLabels are mig_gi and mig_ci as tierra_claim_device_info writes
// them: "" for a whole GPU.
func migLabels(ref usage.GPURef) (string, string) {
	if ref.GPUInstanceID < 0 {
		return "", ""
	}
	return strconv.Itoa(ref.GPUInstanceID), strconv.Itoa(ref.ComputeInstanceID)
}
