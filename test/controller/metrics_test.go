package controller_test

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/controller"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// TestControllerMetrics publishes a DGX H200 (eight whole training GPUs
// under the example policy), allocates one GPU each to a claim of tenant
// research (namespace lab) and of the open tenant (namespace web), leaves a
// claim for all eight pending, and scrapes the controller's /metrics.
func TestControllerMetrics(t *testing.T) {
	ctx, e := startEnv(t)
	c, rc, cs, dyn := e.c, e.rc, e.cs, e.dyn

	policy := v1alpha1.DefaultTierPolicy()
	createPolicy(ctx, t, dyn, policy)
	createNamespace(ctx, t, cs, "lab", map[string]string{v1alpha1.TenantLabel: "research"})
	createNamespace(ctx, t, cs, "web", nil)

	addr := runControllerWithMetrics(ctx, t, c.Kubeconfig())
	published := publishNode(ctx, t, cs, policy)
	require.Positive(t, published[v1alpha1.TierTraining])
	train := tiers.ClassName(v1alpha1.TierTraining)
	allocate(ctx, t, cs, tierratest.MakeClaim("t1", "lab").Request("gpu", train).Obj(), "gpu-0")
	allocate(ctx, t, cs, tierratest.MakeClaim("t2", "web").Request("gpu", train).Obj(), "gpu-1")
	pending, err := cs.ResourceV1().ResourceClaims("lab").Create(ctx,
		tierratest.MakeClaim("all8", "lab").Request("gpu", train).Count(8).Obj(), metav1.CreateOptions{})
	require.NoError(t, err)

	node := `node="` + nodeName + `",tier="training"`
	want := map[string]float64{
		`tierra_tier_gpus{` + node + `}`:                                                            8,
		`tierra_tier_allocated_gpus{` + node + `}`:                                                  2,
		`tierra_tier_yield_ratio{tier="training"}`:                                                  0.25,
		`tierra_pending_claims{namespace="lab",tier="training"}`:                                    1,
		`tierra_allocated_cost_dollars_per_hour{namespace="lab",tenant="research",tier="training"}`: 3.5,
		`tierra_allocated_cost_dollars_per_hour{namespace="web",tenant="",tier="training"}`:         3.5,
		// Typical claims: one GPU (two thirds), eight GPUs (a third); six
		// free GPUs cannot take eight, so a third of them is stranded.
		`tierra_tier_stranded_gpus{` + node + `}`: 2,
	}
	var got map[string]float64
	poll(ctx, t, "metrics never showed the slices and claims", func(ctx context.Context) (bool, error) {
		got = scrape(ctx, t, addr)
		for series, v := range want {
			if g, ok := got[series]; !ok || math.Abs(g-v) > 1e-9 {
				return false, nil
			}
		}
		return true, nil
	})
	for series, v := range want {
		assert.InDelta(t, v, got[series], 1e-9, series)
	}
	age := got[`tierra_pending_claim_age_seconds{tier="training"}`]
	waited := time.Since(pending.CreationTimestamp.Time).Seconds()
	assert.Positive(t, age)
	assert.LessOrEqual(t, age, waited+1, "the oldest pending claim's age")
	assert.Zero(t, got[`tierra_pending_claim_age_seconds{tier="inference"}`], "nothing waits for inference")
	assert.Contains(t, got, `rest_client_requests_total{code="200",host="`+strings.TrimPrefix(rc.Host, "https://")+`",method="GET"}`,
		"client-go's metrics are served too")
}

func createNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// allocate creates the claim and writes the allocation the scheduler would:
// the device of the node's pool.
func allocate(ctx context.Context, t *testing.T, cs kubernetes.Interface, claim *resourceapi.ResourceClaim, device string) {
	t.Helper()
	claim, err := cs.ResourceV1().ResourceClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)
	claim.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
		Results: []resourceapi.DeviceRequestAllocationResult{{
			Request: "gpu", Driver: v1alpha1.DriverName, Pool: nodeName, Device: device,
		}},
	}}
	_, err = cs.ResourceV1().ResourceClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// runControllerWithMetrics runs the controller with metrics on a free
// loopback port and returns the address it bound.
func runControllerWithMetrics(ctx context.Context, t *testing.T, kubeconfig string) string {
	t.Helper()
	bound := make(chan string, 1)
	stopped := runController(ctx, t, controller.Config{Kubeconfig: kubeconfig,
		MetricsAddr: "127.0.0.1:0", OnMetricsServing: func(addr string) { bound <- addr }})
	select {
	case addr := <-bound:
		return addr
	case <-stopped:
		t.Fatal("controller stopped before serving metrics (its error is reported at cleanup)")
	case <-ctx.Done():
		t.Fatal("metrics never served")
	}
	return ""
}

// scrape reads the exposition's samples: series (name and sorted labels,
// as the text format writes them) to value.
func scrape(ctx context.Context, t *testing.T, addr string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return parseSamples(t, resp.Body)
}

func parseSamples(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	require.NoError(t, sc.Err())
	return out
}
