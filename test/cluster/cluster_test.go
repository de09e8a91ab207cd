package cluster_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/test/cluster"
)

const (
	nodeName = "node-1"
	driver   = "gpu.example.com"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestSchedulerAllocatesClaim runs the real control plane and checks that
// kube-scheduler allocates a device from a ResourceSlice to a pod's claim and
// binds the pod; then that Stop leaves no process behind. The node is made
// Ready either by hand (what a kubelet would report) or by kwok.
func TestSchedulerAllocatesClaim(t *testing.T) {
	if err := cluster.CheckBinaries("", true); err != nil {
		t.Skipf("skipping: %v", err)
	}
	tests := map[string]struct {
		kwok bool
	}{
		"hand-made ready node": {},
		"kwok node":            {kwok: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := startCluster(ctx, t, tc.kwok)
			cs, err := c.Clientset()
			require.NoError(t, err)
			if tc.kwok {
				createKwokNode(ctx, t, cs)
			} else {
				makeReadyNode(ctx, t, cs)
			}
			createDRAObjects(ctx, t, cs)

			t0 := time.Now()
			pod, err := cs.CoreV1().Pods("default").Create(ctx, makePod(), metav1.CreateOptions{})
			require.NoError(t, err)
			pod = waitForPod(ctx, t, cs, pod.Name, func(p *corev1.Pod) bool { return p.Spec.NodeName != "" },
				"pod never bound; see "+c.StateDir()+"/logs/kube-scheduler.log")
			t.Logf("pod bound to %s %s after creation", pod.Spec.NodeName, time.Since(t0).Round(time.Millisecond))
			require.Equal(t, nodeName, pod.Spec.NodeName)
			assertAllocated(ctx, t, cs, pod)
			if tc.kwok {
				waitForPod(ctx, t, cs, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning },
					"kwok never ran the pod; see "+c.StateDir()+"/logs/kwok.log")
			}
			assertStopLeavesNothing(t, c)
		})
	}
}

func startCluster(ctx context.Context, t *testing.T, kwok bool) *cluster.Cluster {
	t.Helper()
	// Not t.TempDir: it must outlive Stop, which the cleanup below runs.
	dir, err := os.MkdirTemp("", "tierra-cluster-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{
		StateDir: dir, Kwok: kwok, StopWithParent: true, Log: logWriter{t},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("control plane up in %s", time.Since(t0).Round(time.Millisecond))

	_, err = cluster.Start(ctx, cluster.Options{StateDir: dir})
	require.ErrorIs(t, err, cluster.ErrAlreadyRunning)
	return c
}

func waitForPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, cond func(*corev1.Pod) bool, msg string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(pod), err
	})
	require.NoError(t, err, msg)
	return pod
}

func assertStopLeavesNothing(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	pids := c.PIDs()
	require.NotEmpty(t, pids)
	require.NoError(t, c.Stop())
	require.NoError(t, c.Stop(), "second Stop")
	for name, pid := range pids {
		err := syscall.Kill(pid, 0)
		require.True(t, errors.Is(err, syscall.ESRCH), "%s (pid %d) outlived Stop: %v", name, pid, err)
	}
	require.Empty(t, c.Running())
}
