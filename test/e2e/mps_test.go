package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/test/stack"
)

// mpsDaemon returns the MPS daemon Deployment of the GPU, if any.
func mpsDaemon(ctx context.Context, node, gpu string) (*appsv1.Deployment, error) {
	dep, err := env.cs.AppsV1().Deployments(stack.PluginNamespace).Get(ctx, sharing.DaemonName(node, gpu), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return dep, err
}

// mpsDaemonPod is the daemon's one pod, once it is ready.
func mpsDaemonPod(ctx context.Context, t *testing.T, dep *appsv1.Deployment) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(ctx, t, "the MPS daemon pod never became ready", func(ctx context.Context) (bool, error) {
		pods, err := env.cs.CoreV1().Pods(stack.PluginNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: sharing.LabelMPSDaemon + "=" + dep.Name})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		pod = &pods.Items[0]
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	return pod
}

// On an MPS GPU the daemon runs in a pod of its own, pinned to the node,
// with the claims' limits set on the daemon (where a workload cannot
// unset them); it survives the plugin being killed under live claims and
// goes with the GPU's last claim.
func TestMPSDaemonRunsInItsOwnPodAndOutlivesThePlugin(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node, ns = "l4-serve", "product"
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, ns) })
	applyFile(ctx, t, "demo/scenarios/serving")
	a := podClaim(ctx, t, waitRunning(ctx, t, ns, "embeddings-a"))
	b := podClaim(ctx, t, waitRunning(ctx, t, ns, "embeddings-b"))
	res := a.Status.Allocation.Devices.Results[0]
	require.Equal(t, res.Device, b.Status.Allocation.Devices.Results[0].Device, "one tenant's two claims share the GPU")
	gpu := slices.StringAttribute(publishedDevice(ctx, t, res.Pool, res.Device), slices.AttrUUID)

	dep, err := mpsDaemon(ctx, node, gpu)
	require.NoError(t, err)
	require.NotNil(t, dep, "no MPS daemon Deployment for %s", gpu)
	pod := mpsDaemonPod(ctx, t, dep)
	assert.Equal(t, node, pod.Spec.NodeName)
	pipe := filepath.Join(env.nodes[node].StateDir(), "mps", gpu, "pipe")
	got, err := os.ReadFile(filepath.Join(pipe, "fake-limits"))
	require.NoError(t, err)
	assert.Equal(t, "set_default_active_thread_percentage 50\nset_default_device_pinned_mem_limit 0 8192M\n", string(got),
		"the daemon pod set the claims' limits (demo/scenarios/serving) on the daemon")
	spec, err := os.ReadFile(filepath.Join(env.nodes[node].CDIDir(), "gpu.tierra.dev-claim_"+string(a.UID)+".json"))
	require.NoError(t, err)
	for _, want := range []string{`"containerPath":"/tmp/nvidia-mps"`, `"containerPath":"/dev/shm"`} {
		assert.Contains(t, string(spec), want, "the client shares the daemon's pipes and shared memory")
	}

	require.NoError(t, env.nodes[node].RestartPlugin(ctx))
	after, err := mpsDaemon(ctx, node, gpu)
	require.NoError(t, err)
	require.NotNil(t, after, "the daemon went with the plugin")
	assert.Equal(t, dep.UID, after.UID, "the daemon was not recreated")
	assert.Equal(t, pod.UID, mpsDaemonPod(ctx, t, after).UID, "the daemon's pod was not replaced")
	assert.FileExists(t, filepath.Join(pipe, "fake-mps-daemon"), "the daemon process still runs")

	deletePods(ctx, t, ns, "embeddings-a")
	dep, err = mpsDaemon(ctx, node, gpu)
	require.NoError(t, err)
	require.NotNil(t, dep, "embeddings-b still uses the daemon")
	deletePods(ctx, t, ns, "embeddings-b")
	poll(ctx, t, "the MPS daemon outlived the GPU's last claim", func(ctx context.Context) (bool, error) {
		dep, err := mpsDaemon(ctx, node, gpu)
		return dep == nil, err
	})
	assert.NoDirExists(t, filepath.Join(env.nodes[node].StateDir(), "mps", gpu))
}
