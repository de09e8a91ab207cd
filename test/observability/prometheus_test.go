package observability

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"
)

// promWait bounds waiting for an answer: a few scrapes and rule
// evaluations (1 s each) after the state changed.
const promWait = 60 * time.Second

// byLabel indexes a vector by one label's value.
func byLabel(v model.Vector, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		out[string(s.Metric[model.LabelName(label)])] = float64(s.Value)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// one accepts a vector of one sample equal to want.
func one(want float64) func(model.Vector) bool {
	return func(v model.Vector) bool { return len(v) == 1 && near(float64(v[0].Value), want) }
}

// labelled accepts a vector whose samples, by label, are want.
func labelled(label string, want map[string]float64) func(model.Vector) bool {
	return func(v model.Vector) bool {
		got := byLabel(v, label)
		if len(got) != len(want) {
			return false
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !near(g, w) {
				return false
			}
		}
		return true
	}
}

// waitFor asks Prometheus until the answer passes; the failure says the
// last answer and the targets' health.
func waitFor(ctx context.Context, t *testing.T, promql string, cond func(model.Vector) bool) model.Vector {
	t.Helper()
	v, err := env.prom.WaitFor(ctx, promql, promWait, cond)
	require.NoError(t, err)
	return v
}

// Every component is a healthy target and its client-go REST metrics come
// through: the controller's and each simulated node's plugin's.
func TestPrometheusScrapesEveryComponent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	stackUp(t)
	waitFor(ctx, t, `sum by (job) (up)`, labelled("job", map[string]float64{controllerJob: 1, pluginJob: float64(len(simulatedNodes))}))
	waitFor(ctx, t, `count by (job) (up == 0)`, func(v model.Vector) bool { return len(v) == 0 })
	v := waitFor(ctx, t, `sum by (job) (rest_client_requests_total{code=~"2.."})`, func(v model.Vector) bool { return len(v) == 2 })
	for job, n := range byLabel(v, "job") {
		assert.Positive(t, n, "%s made API requests", job)
	}
	// Every plugin reports its own requests series, zero or not, once it
	// prepared anything; before that its health and MPS series exist.
	waitFor(ctx, t, `count by (instance) (tierra_plugin_mps_daemons{job="`+pluginJob+`"})`,
		func(v model.Vector) bool { return len(v) == len(simulatedNodes) })
}

// The controller's per-tier GPUs, and yield through the chart's recording
// rules evaluated live: the training node's eight H200s, four of them held
// by the demo's training pod, then none once it is gone. The plugin's
// claim <-> device series names the pod's four GPUs.
func TestPrometheusTrainingYieldAndClaimDevices(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	stackUp(t)
	waitFor(ctx, t, `sum by (tier) (tierra_tier_gpus{node="dgx-h200-train"})`, labelled("tier", map[string]float64{"training": 8}))
	waitFor(ctx, t, `tierra:tier_yield:ratio{tier="training"}`, one(0))

	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	applyFile(ctx, t, "demo/scenarios/training")
	waitRunning(ctx, t, "research", "llm-pretrain")

	waitFor(ctx, t, `tierra_tier_allocated_gpus{tier="training",node="dgx-h200-train"}`, one(4))
	waitFor(ctx, t, `tierra:tier_yield:ratio{tier="training"}`, one(0.5))
	// Four H200s at the price book's $3.50 per GPU-hour.
	waitFor(ctx, t, `tierra:tenant_allocated_cost_dollars_per_hour:sum{tier="training"}`, labelled("tenant", map[string]float64{"research": 14}))
	info := `tierra_claim_device_info{namespace="research",pod="llm-pretrain",tenant="research",tier="training",node="dgx-h200-train",sharing=~"(?i)exclusive"}`
	waitFor(ctx, t, `count(count by (gpu_uuid) (`+info+`))`, one(4))
	v := waitFor(ctx, t, info, func(v model.Vector) bool { return len(v) == 4 })
	for _, s := range v {
		assert.Regexp(t, `^GPU-`, string(s.Metric["gpu_uuid"]), "the GPU's UUID, as dcgm-exporter's UUID label has it")
		assert.NotEmpty(t, s.Metric["claim"])
	}
	waitFor(ctx, t, `sum(tierra_plugin_requests_total{operation="prepare",result="success",instance=~".+"})`,
		func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 1 })

	deletePods(ctx, t, "research", "llm-pretrain")
	waitFor(ctx, t, `tierra_tier_allocated_gpus{tier="training",node="dgx-h200-train"}`, one(0))
	waitFor(ctx, t, `count(`+info+`)`, func(v model.Vector) bool { return len(v) == 0 })
	waitFor(ctx, t, `sum(tierra_plugin_requests_total{operation="unprepare",result="success"})`,
		func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 1 })
}

// The demo's two dev notebooks of tenant research time-slice one L4, a
// quarter of its compute each: one GPU in the claim <-> device series, two
// pods on it, half a GPU allocated.
func TestPrometheusTimeSlicedNotebooks(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	stackUp(t)
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	applyFile(ctx, t, "demo/scenarios/dev")
	waitRunning(ctx, t, "research", "notebook-alice")
	waitRunning(ctx, t, "research", "notebook-bob")

	info := `tierra_claim_device_info{namespace="research",tenant="research",tier="dev",node="l4-dev",sharing=~"(?i)time-?slicing"}`
	waitFor(ctx, t, `count by (gpu_uuid) (`+info+`)`, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 2 })
	waitFor(ctx, t, `sum by (tier) (tierra_tier_gpus{node="l4-dev"})`, labelled("tier", map[string]float64{"dev": 4}))
	waitFor(ctx, t, `sum(tierra_tier_allocated_gpus{tier="dev",node="l4-dev"})`, one(0.5))
	waitFor(ctx, t, `tierra:tier_yield:ratio{tier="dev"}`, one(0.125))
	// Half an L4's compute at the price book's $0.80, less the spot
	// override's 60%: 0.5 x 0.80 x 0.4.
	waitFor(ctx, t, `tierra:tenant_allocated_cost_dollars_per_hour:sum{tier="dev"}`, labelled("tenant", map[string]float64{"research": 0.16}))
}

// applyFile applies a file or directory of the repository.
func applyFile(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	require.NoError(t, env.apply.ApplyFiles(ctx, filepath.Join(env.root, path)))
}

func waitRunning(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, promWait, true, func(ctx context.Context) (bool, error) {
		pod, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && pod.Status.Phase == corev1.PodRunning, err
	})
	require.NoError(t, err, "pod %s/%s never ran", ns, name)
}

// deletePods deletes the pods and waits until they are gone.
func deletePods(ctx context.Context, t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		err := env.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, promWait, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			if _, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "pods %v never went", names)
}

// cleanNamespace deletes what a test left in the namespace: pods, then
// claims and templates.
func cleanNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	deletePods(ctx, t, ns, names...)
	require.NoError(t, env.cs.ResourceV1().ResourceClaims(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	require.NoError(t, env.cs.ResourceV1().ResourceClaimTemplates(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, promWait, true, func(ctx context.Context) (bool, error) {
		claims, err := env.cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(claims.Items) == 0, err
	})
	require.NoError(t, err, "claims of %s never went", ns)
}
