package nodesim

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/report"
)

// GPUUseAnnotation on a pod makes the simulated node run one fake GPU
// process per device the pod's claims hold, using what the annotation says:
// "sm=30,memory=2Gi" (SM percent 0-100, GPU memory as a quantity). The
// fake machine reports the processes through NVML's per-process calls, and
// each has a /proc/<pid>/cgroup naming the pod, so the plugin attributes
// their use to the pod as it would on a real node. The devices come from
// the plugin's own tierra_claim_device_info series, so the node needs
// Options.MetricsAddress.
const GPUUseAnnotation = "nodesim.tierra.dev/gpu-use"

// firstFakePID keeps fake PIDs clear of the host's own.
const firstFakePID = 4_000_000

// gpuUse is a pod's requested use of each of its GPUs.
type gpuUse struct {
	smPercent   uint32
	memoryBytes uint64
}

// parseGPUUse reads GPUUseAnnotation's value.
func parseGPUUse(v string) (gpuUse, error) {
	var u gpuUse
	for _, part := range strings.Split(v, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return u, fmt.Errorf("annotation %s %q: want key=value pairs such as sm=30,memory=2Gi", GPUUseAnnotation, v)
		case key == "sm":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || n > 100 {
				return u, fmt.Errorf("annotation %s: sm %q: want a percent from 0 to 100", GPUUseAnnotation, val)
			}
			u.smPercent = uint32(n)
		case key == "memory":
			q, err := resource.ParseQuantity(val)
			if err != nil || q.Sign() < 0 {
				return u, fmt.Errorf("annotation %s: memory %q: want a quantity such as 2Gi", GPUUseAnnotation, val)
			}
			u.memoryBytes = uint64(q.Value())
		default:
			return u, fmt.Errorf("annotation %s: unknown key %q: want sm or memory", GPUUseAnnotation, key)
		}
	}
	return u, nil
}

// gpuProcesses are the fake GPU processes of the node's pods: it writes
// the fake machine's process file and the fake /proc the plugin reads.
type gpuProcesses struct {
	file, procRoot, metricsURL string

	mu    sync.Mutex
	next  uint32
	byPod map[types.UID][]nvgpu.FakeProcess
}

func newGPUProcesses(file, procRoot, metricsURL string) *gpuProcesses {
	return &gpuProcesses{file: file, procRoot: procRoot, metricsURL: metricsURL, next: firstFakePID,
		byPod: map[types.UID][]nvgpu.FakeProcess{}}
}

// start runs the pod's fake processes; a pod without the annotation has none.
func (g *gpuProcesses) start(ctx context.Context, pod *corev1.Pod) error {
	v, ok := pod.Annotations[GPUUseAnnotation]
	if !ok {
		return nil
	}
	use, err := parseGPUUse(v)
	if err != nil {
		return err
	}
	if g.metricsURL == "" {
		return fmt.Errorf("annotation %s needs the node's plugin metrics (nodesim Options.MetricsAddress)", GPUUseAnnotation)
	}
	devices, err := g.podDevices(ctx, pod)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, done := g.byPod[pod.UID]; done {
		return nil
	}
	var procs []nvgpu.FakeProcess
	for _, d := range devices {
		p := d
		p.PID, p.SMPercent, p.MemoryBytes = g.next, use.smPercent, use.memoryBytes
		g.next++
		if err := podproc.WriteFakeCgroup(g.procRoot, p.PID, string(pod.UID)); err != nil {
			return err
		}
		procs = append(procs, p)
	}
	g.byPod[pod.UID] = procs
	return g.writeLocked()
}

// stop ends the pod's fake processes.
func (g *gpuProcesses) stop(uid types.UID) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	procs, ok := g.byPod[uid]
	if !ok {
		return nil
	}
	delete(g.byPod, uid)
	for _, p := range procs {
		_ = os.RemoveAll(filepath.Join(g.procRoot, strconv.FormatUint(uint64(p.PID), 10)))
	}
	return g.writeLocked()
}

func (g *gpuProcesses) writeLocked() error {
	var all []nvgpu.FakeProcess
	for _, procs := range g.byPod {
		all = append(all, procs...)
	}
	slices.SortFunc(all, func(a, b nvgpu.FakeProcess) int { return int(a.PID) - int(b.PID) })
	return nvgpu.WriteFakeProcesses(g.file, all)
}

// podDevices reads the GPU (and MIG instance) of each device the plugin
// prepared for the pod from its claim-device info series.
func (g *gpuProcesses) podDevices(ctx context.Context, pod *corev1.Pod) ([]nvgpu.FakeProcess, error) {
	samples, err := report.Scrape(ctx, http.DefaultClient, []string{g.metricsURL})
	if err != nil {
		return nil, fmt.Errorf("GPU devices of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var out []nvgpu.FakeProcess
	seen := map[string]bool{}
	for _, s := range samples {
		l := s.Labels
		if s.Name != report.ClaimDeviceInfo || l["namespace"] != pod.Namespace || l["pod"] != pod.Name || l["gpu_uuid"] == "" {
			continue
		}
		key := l["gpu_uuid"] + "/" + l["mig_gi"] + "/" + l["mig_ci"]
		if seen[key] {
			continue
		}
		seen[key] = true
		p := nvgpu.FakeProcess{GPUUUID: l["gpu_uuid"]}
		if gi, err := strconv.Atoi(l["mig_gi"]); err == nil {
			ci, err := strconv.Atoi(l["mig_ci"])
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s: device %s: mig_ci %q: %w", pod.Namespace, pod.Name, l["device"], l["mig_ci"], err)
			}
			p.GPUInstance, p.ComputeInstance = &gi, &ci
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("annotation %s on pod %s/%s: the plugin reports no GPU prepared for it", GPUUseAnnotation, pod.Namespace, pod.Name)
	}
	return out, nil
}
