package plugin_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	drahealth "k8s.io/kubelet/pkg/apis/dra-health/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// healthQuiet is the quiet period the tests run with.
const healthQuiet = time.Second

func quickHealthPolicy() *v1alpha1.TierPolicy {
	p := v1alpha1.DefaultTierPolicy()
	p.Spec.Health = &v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: healthQuiet}}
	return p
}

// taintsOf is the taints of each published device that carries some.
func (h *harness) taintsOf(t testing.TB) map[string][]string {
	out := map[string][]string{}
	for _, s := range h.publishedSlices(t) {
		for _, d := range s.Spec.Devices {
			for _, taint := range d.Taints {
				out[d.Name] = append(out[d.Name], taint.Key+"="+taint.Value+":"+string(taint.Effect))
			}
		}
	}
	return out
}

// watchHealth opens the kubelet's health stream and returns a function
// that waits for the health of one device to become want.
func (h *harness) watchHealth(t *testing.T) func(device string, want drahealth.HealthStatus) {
	client := drahealth.NewDRAResourceHealthClient(dial(t, filepath.Join(h.cfg.PluginDataDir, "dra.sock")))
	stream, err := client.NodeWatchResources(h.ctx, &drahealth.NodeWatchResourcesRequest{})
	require.NoError(t, err)
	reports := make(chan *drahealth.NodeWatchResourcesResponse, 16)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				close(reports)
				return
			}
			reports <- r
		}
	}()
	return func(device string, want drahealth.HealthStatus) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r, ok := <-reports:
				require.True(t, ok, "health stream ended")
				for _, d := range r.Devices {
					if d.Device.DeviceName == device && d.Health == want {
						assert.Equal(t, nodeName, d.Device.PoolName)
						assert.EqualValues(t, 30, d.HealthCheckTimeoutSeconds)
						return
					}
				}
			case <-deadline:
				t.Fatalf("device %s never reported %s", device, want)
			}
		}
	}
}

// XID 79 on GPU 2 taints its device at once and the prepared claim on it
// sees it Unhealthy; the taint clears after the quiet period and the
// device is Healthy again. An application XID taints nothing.
func TestXIDTaintsTheGPUAndClearsAfterQuietPeriod(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()))
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	claim := h.claim(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj(),
		func(r *resourceapi.AllocationResult) { r.Devices.Results[0].Device = "gpu-2" })
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	require.Empty(t, resp.Claims["uid-train"].Error)
	waitHealth := h.watchHealth(t)
	waitHealth("gpu-2", drahealth.HealthStatus_HEALTHY)

	require.NoError(t, h.gpus.InjectXID(2, 13))
	require.NoError(t, h.gpus.InjectXID(2, 79))
	injected := time.Now()
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual(map[string][]string{"gpu-2": {health.XIDTaintKey + "=79:NoSchedule"}}, h.taintsOf(t))
	}, 2*time.Second, 10*time.Millisecond, "only GPU 2 is tainted, by XID 79")
	tainted := time.Now()
	waitHealth("gpu-2", drahealth.HealthStatus_UNHEALTHY)
	t.Logf("fault -> taint: %s", tainted.Sub(injected))

	require.Eventually(t, func() bool { return len(h.taintsOf(t)) == 0 }, 10*time.Second, 10*time.Millisecond)
	cleared := time.Since(tainted)
	assert.GreaterOrEqual(t, cleared, healthQuiet-50*time.Millisecond, "not before the quiet period")
	waitHealth("gpu-2", drahealth.HealthStatus_HEALTHY)
	t.Logf("taint -> clear: %s (quiet period %s)", cleared, healthQuiet)
}

// A lost GPU is left out while it does not answer; back on the bus it is
// published tainted until the quiet period after it answered has passed.
func TestLostGPUComesBackTaintedThenClears(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierTraining, withPolicy(quickHealthPolicy()))
	require.Eventually(t, func() bool { return h.gpus.OpenEventSets() > 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, h.gpus.LoseGPU(5))
	require.Eventually(t, func() bool {
		for _, s := range h.publishedSlices(t) {
			for _, d := range s.Spec.Devices {
				if d.Name == "gpu-5" {
					return false
				}
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "the lost GPU is left out")
	require.Never(t, func() bool { _, back := h.taintsOf(t)["gpu-5"]; return back }, 2*healthQuiet, 100*time.Millisecond,
		"a GPU that does not answer stays away past the quiet period")
	require.NoError(t, h.gpus.RestoreGPU(5))
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual(map[string][]string{"gpu-5": {health.LostTaintKey + "=Lost:NoSchedule"}}, h.taintsOf(t))
	}, 5*time.Second, 10*time.Millisecond, "back on the bus, still tainted")
	require.Eventually(t, func() bool { return len(h.taintsOf(t)) == 0 }, 10*time.Second, 10*time.Millisecond)
}
