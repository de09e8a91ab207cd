package gangs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/stack"
)

const (
	ns      = "research"
	timeout = 2 * time.Minute
	// hold is how long the short gang is watched to stay unbound.
	hold = 10 * time.Second
)

var gang = []string{"llm-gang-0", "llm-gang-1"}

// blocker holds one of the training node's eight GPUs, so that only one of
// the gang's two 4-GPU pods would fit.
const blocker = `
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: gang-blocker, namespace: research}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly: {deviceClassName: training.gpu.tierra.dev, count: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: gang-blocker, namespace: research}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources:
      claims: [{name: gpu}]
  resourceClaims:
  - name: gpu
    resourceClaimTemplateName: gang-blocker
`

// With one GPU of the node taken, seven are free: enough for one pod of the
// gang, not both. Neither binds and neither claim is allocated, though the
// scheduler tried both; once the GPU is freed, both bind, each on four
// GPUs of one NVLink domain, eight distinct GPUs in all.
func TestGangBindsAllOrNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() { cleanUp(context.WithoutCancel(ctx), t) })
	applyYAML(ctx, t, blocker)
	waitRunning(ctx, t, "gang-blocker")

	require.NoError(t, env.apply.ApplyFiles(ctx, filepath.Join(env.root, "demo/gangs/gang-train.yaml")))
	poll(ctx, t, "the scheduler never tried the gang", func(ctx context.Context) (bool, error) {
		for _, name := range gang {
			p, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !unschedulable(p) {
				return false, nil
			}
		}
		return true, nil
	})
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		for _, name := range gang {
			p, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			require.Empty(t, p.Spec.NodeName, "%s bound while its peer cannot fit", name)
			for _, c := range podClaims(ctx, t, name) {
				require.Nil(t, c.Status.Allocation, "claim %s of %s allocated while the gang cannot fit", c.Name, name)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, name := range gang {
		t.Logf("%s while short: %s", name, stack.EventSummary(ctx, env.cs, ns, name))
	}

	deletePod(ctx, t, "gang-blocker")
	devices := map[string]bool{}
	for _, name := range gang {
		p := waitRunning(ctx, t, name)
		assert.Equal(t, trainNode, p.Spec.NodeName)
		claims := podClaims(ctx, t, name)
		require.Len(t, claims, 1)
		require.NotNil(t, claims[0].Status.Allocation, "%s's claim", name)
		results := claims[0].Status.Allocation.Devices.Results
		assert.Len(t, results, 4)
		for _, r := range results {
			devices[r.Device] = true
		}
	}
	assert.Len(t, devices, 8, "the two pods hold eight distinct GPUs: %v", devices)
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func poll(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, cond), what)
}

func applyYAML(ctx context.Context, t *testing.T, doc string) {
	t.Helper()
	objs, err := manifests.Decode([]byte(doc))
	require.NoError(t, err)
	require.NoError(t, env.apply.Apply(ctx, objs...))
}

func waitRunning(ctx context.Context, t *testing.T, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && pod.Status.Phase == corev1.PodRunning, err
	})
	require.NoError(t, err, "pod %s never ran; its events: %s", name, stack.EventSummary(ctx, env.cs, ns, name))
	return pod
}

// podClaims are the claims generated for the pod.
func podClaims(ctx context.Context, t *testing.T, pod string) []resourceapi.ResourceClaim {
	t.Helper()
	list, err := env.cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var out []resourceapi.ResourceClaim
	for _, c := range list.Items {
		if owner := metav1.GetControllerOf(&c); owner != nil && owner.Kind == "Pod" && owner.Name == pod {
			out = append(out, c)
		}
	}
	return out
}

// deletePod deletes a pod and waits until it and its claims are gone.
func deletePod(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	err := env.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if !apierrors.IsNotFound(err) {
		require.NoError(t, err)
	}
	poll(ctx, t, fmt.Sprintf("pod %s and its claims never went", name), func(ctx context.Context) (bool, error) {
		_, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) && len(podClaims(ctx, t, name)) == 0, nil
	})
}

func cleanUp(ctx context.Context, t *testing.T) {
	for _, name := range append([]string{"gang-blocker"}, gang...) {
		deletePod(ctx, t, name)
	}
	for _, name := range []string{"gang-blocker", "llm-gang"} {
		err := env.cs.ResourceV1().ResourceClaimTemplates(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			assert.NoError(t, err)
		}
	}
	err := env.cs.SchedulingV1beta1().PodGroups(ns).Delete(ctx, "llm-gang", metav1.DeleteOptions{})
	if !apierrors.IsNotFound(err) {
		assert.NoError(t, err)
	}
}
