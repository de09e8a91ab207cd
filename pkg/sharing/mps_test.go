package sharing_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

func mpsSharing(pct int32, pinned string) *v1alpha1.GpuSharing {
	c := &v1alpha1.MPSConfig{}
	if pct > 0 {
		c.DefaultActiveThreadPercentage = ptr.To(pct)
	}
	if pinned != "" {
		c.DefaultPinnedDeviceMemoryLimit = ptr.To(resource.MustParse(pinned))
	}
	return &v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS, MPS: c}
}

func TestLimitsOf(t *testing.T) {
	l := sharing.LimitsOf(mpsSharing(30, "1500Ki").MPS)
	assert.Equal(t, sharing.MPSLimits{ActiveThreadPercentage: 30, PinnedDeviceMemoryMiB: 2}, l, "pinned memory rounds up to whole MiB")
	assert.Equal(t, []string{"set_default_active_thread_percentage 30", "set_default_device_pinned_mem_limit 0 2M"}, l.Commands())
	assert.Equal(t, "defaultActiveThreadPercentage=30, defaultPinnedDeviceMemoryLimit=2Mi", l.String())
	assert.Empty(t, sharing.LimitsOf(nil).Commands())
	assert.Equal(t, "no limits", sharing.LimitsOf(nil).String())
}

// The daemon enforces one set of limits for all its clients, so a claim
// joining a GPU must ask for the same ones: one asking for more would get
// less than it asked, one asking for less could take more.
func TestJoiningClaimMustAskTheDaemonsLimits(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	m, err := sharing.New(sharing.Options{Runner: &sharing.FakeRunner{}, MPSDir: t.TempDir()})
	require.NoError(t, err)
	_, err = m.Share(ctx, "GPU-1", mpsSharing(50, "8Gi"), true)
	require.NoError(t, err)
	_, err = m.Share(ctx, "GPU-1", mpsSharing(50, "8Gi"), false)
	require.NoError(t, err, "same limits join")
	_, err = m.Share(ctx, "GPU-1", mpsSharing(30, "8Gi"), false)
	require.ErrorIs(t, err, sharing.ErrMPSLimitsDiffer)
	assert.ErrorContains(t, err, "enforces defaultActiveThreadPercentage=50, defaultPinnedDeviceMemoryLimit=8192Mi for every client and this claim asks for defaultActiveThreadPercentage=30")
	_, err = m.Share(ctx, "GPU-1", mpsSharing(0, ""), false)
	require.ErrorIs(t, err, sharing.ErrMPSLimitsDiffer, "no limits is not the daemon's limits")
}

// Supervise against a stand-in control daemon: it becomes ready only with
// the limits set, the probe follows it, and SIGTERM (ctx) makes it quit.
func TestSupervise(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	control, err := filepath.Abs("testdata/fake-mps-control")
	require.NoError(t, err)
	d := sharing.Daemon{GPUUUID: "GPU-1", Dir: t.TempDir(), Limits: sharing.MPSLimits{ActiveThreadPercentage: 25, PinnedDeviceMemoryMiB: 4096}}
	o := sharing.SuperviseOptions{Daemon: d, ControlCommand: control, Output: &syncBuffer{}}
	require.Error(t, sharing.Probe(ctx, o), "not ready before it runs")

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sharing.Supervise(runCtx, o) }()
	require.Eventually(t, func() bool { return sharing.Probe(ctx, o) == nil }, 10*time.Second, 50*time.Millisecond)
	limits, err := os.ReadFile(filepath.Join(d.PipeDir(), "fake-limits"))
	require.NoError(t, err)
	assert.Equal(t, "set_default_active_thread_percentage 25\nset_default_device_pinned_mem_limit 0 4096M\n", string(limits),
		"the limits are set on the daemon before it is ready")

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Supervise did not return after SIGTERM")
	}
	assert.NoFileExists(t, filepath.Join(d.PipeDir(), "fake-daemon"), "the daemon quit")
	require.Error(t, sharing.Probe(ctx, o), "not ready once stopped")
}

// A daemon that dies is an error (the kubelet restarts the container), not
// a silent exit.
func TestSuperviseReportsADaemonThatDies(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	control, err := filepath.Abs("testdata/fake-mps-control")
	require.NoError(t, err)
	d := sharing.Daemon{GPUUUID: "GPU-1", Dir: t.TempDir()}
	o := sharing.SuperviseOptions{Daemon: d, ControlCommand: control}
	done := make(chan error, 1)
	go func() { done <- sharing.Supervise(ctx, o) }()
	require.Eventually(t, func() bool { return sharing.Probe(ctx, o) == nil }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, os.Remove(filepath.Join(d.PipeDir(), "fake-daemon")))
	select {
	case err := <-done:
		require.ErrorContains(t, err, "MPS control daemon of GPU-1 exited")
	case <-time.After(20 * time.Second):
		t.Fatal("Supervise did not notice the daemon exit")
	}
}

func podDaemons(t *testing.T, client *fake.Clientset, timeout time.Duration) *sharing.PodDaemons {
	t.Helper()
	p, err := sharing.NewPodDaemons(sharing.PodOptions{Client: client, Namespace: "tierra-system", Node: "node-a", NodeUID: "uid-node-a",
		Image: "tierra:test", SupervisorCommand: []string{"/usr/bin/tierra-kubelet-plugin", "mps-daemon"},
		ControlCommand: "nvidia-cuda-mps-control", PriorityClassName: "system-node-critical", ReadyTimeout: timeout})
	require.NoError(t, err)
	return p
}

// readyOnCreate plays the Deployment controller and kubelet: the created
// Deployment reports its pod ready.
func readyOnCreate(client *fake.Clientset) {
	client.PrependReactor("create", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		dep := a.(k8stesting.CreateAction).GetObject().(*appsv1.Deployment)
		dep.Status.ReadyReplicas, dep.Status.ObservedGeneration = 1, dep.Generation
		return false, nil, nil
	})
}

func TestPodDaemons(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	readyOnCreate(client)
	p := podDaemons(t, client, 5*time.Second)
	d := sharing.Daemon{GPUUUID: "GPU-1", Dir: "/var/lib/tierra/mps/GPU-1", Limits: sharing.MPSLimits{ActiveThreadPercentage: 40}}
	require.NoError(t, p.Start(ctx, d))

	dep, err := client.AppsV1().Deployments("tierra-system").Get(ctx, sharing.DaemonName("node-a", "GPU-1"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, dep.Spec.Strategy.Type, "never two daemons on one pipe directory")
	assert.Equal(t, "Node", dep.OwnerReferences[0].Kind, "a deleted Node takes its daemons")
	pod := dep.Spec.Template.Spec
	assert.Equal(t, "node-a", pod.NodeName)
	assert.Equal(t, "Exists", string(pod.Tolerations[0].Operator))
	c := pod.Containers[0]
	assert.Equal(t, []string{"/usr/bin/tierra-kubelet-plugin", "mps-daemon"}, c.Command)
	assert.Equal(t, []string{"--gpu=GPU-1", "--dir=/var/lib/tierra/mps/GPU-1", "--control-command=nvidia-cuda-mps-control", "--active-thread-percentage=40"}, c.Args)
	assert.Contains(t, c.ReadinessProbe.Exec.Command, "--probe")
	assert.Contains(t, c.LivenessProbe.Exec.Command, "--probe")
	var mounts []string
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	assert.Equal(t, []string{"/var/lib/tierra/mps/GPU-1", "/dev/shm"}, mounts)
	assert.Equal(t, "/var/lib/tierra/mps/GPU-1/shm", pod.Volumes[1].HostPath.Path)

	gpus, err := p.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"GPU-1"}, gpus)
	require.NoError(t, p.Start(ctx, d), "a leftover daemon of the same limits is kept")

	require.NoError(t, p.Stop(ctx, d))
	gpus, err = p.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, gpus)
	require.NoError(t, p.Stop(ctx, d), "stopping a daemon that is gone is fine")
}

func TestPodDaemonsNotReady(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	p := podDaemons(t, client, 300*time.Millisecond)
	err := p.Start(ctx, sharing.Daemon{GPUUUID: "GPU-1", Dir: "/x"})
	require.ErrorContains(t, err, "not ready")
	assert.ErrorContains(t, err, "(no pod yet)")
}

func TestNewPodDaemonsNamesWhatIsMissing(t *testing.T) {
	_, err := sharing.NewPodDaemons(sharing.PodOptions{})
	require.Error(t, err)
	for _, want := range []string{"client is required", "namespace is required", "node is required", "image is required", "supervisor command is required"} {
		assert.ErrorContains(t, err, want)
	}
}

// syncBuffer is a bytes.Buffer the daemon's output may be written to from
// the exec goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// A daemon pod whose directory was lost (a wiped state dir) is still one
// this node's plugin started: MPSDaemons lists it, so the startup
// reconcile stops it when no record holds its GPU.
func TestMPSDaemonsListsPodsWithoutDirectory(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	readyOnCreate(client)
	pods := podDaemons(t, client, 5*time.Second)
	m, err := sharing.New(sharing.Options{Runner: &sharing.FakeRunner{}, MPSDir: t.TempDir(), Daemons: pods})
	require.NoError(t, err)
	_, err = m.Share(ctx, "GPU-1", mpsSharing(0, ""), true)
	require.NoError(t, err)
	require.NoError(t, m.ForgetMPS("GPU-1"))
	gpus, err := m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"GPU-1"}, gpus)
	require.NoError(t, m.StopMPS(ctx, "GPU-1"))
	gpus, err = m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.Empty(t, gpus)
	deps, err := client.AppsV1().Deployments("tierra-system").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, deps.Items)
}

// A daemon pod that never gets ready fails the first claim's prepare and
// leaves neither a Deployment nor a directory behind.
func TestShareUndoesADaemonPodThatNeverGetsReady(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	m, err := sharing.New(sharing.Options{Runner: &sharing.FakeRunner{}, MPSDir: t.TempDir(), Daemons: podDaemons(t, client, 200*time.Millisecond)})
	require.NoError(t, err)
	_, err = m.Share(ctx, "GPU-1", mpsSharing(10, ""), true)
	require.ErrorContains(t, err, "start MPS daemon of GPU-1")
	deps, err := client.AppsV1().Deployments("tierra-system").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, deps.Items)
	gpus, err := m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.Empty(t, gpus)
}
