package prepbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/test/cluster"
)

const (
	nodeName  = "bench-node"
	namespace = "bench"
)

// control is the control plane TestMain starts, shared by every test and
// benchmark of the package; nil with skipReason set when it cannot run.
var (
	control    *cluster.Cluster
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := cluster.CheckBinaries("", false); err != nil {
		skipReason = fmt.Sprintf("control plane: %v; run %s", err, cluster.BuildCommand)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "tierra-prepbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c, err := cluster.Start(context.Background(), cluster.Options{StateDir: filepath.Join(dir, "cluster"), StopWithParent: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	control = c
	defer stopEnv()
	return m.Run()
}

// stopEnv stops the plugin the tests started, if any, and removes its files.
func stopEnv() {
	if sharedEnv == nil {
		return
	}
	if err := sharedEnv.driver.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop plugin:", err)
	}
	_ = sharedEnv.gpus.Close()
	_ = os.RemoveAll(sharedEnv.dir)
}

// env is the plugin on one fake dgxh200 node in the inference tier (whole
// GPUs 0-3, MIG on GPUs 4-7), shared by the package's tests and benchmarks.
type env struct {
	ctx    context.Context
	cs     kubernetes.Interface
	gpus   *nvgpu.Fake
	cfg    plugin.Config
	alloc  *allocator.Cluster
	steps  *stepTimes
	driver *plugin.Driver
	socket string
	dir    string

	mu      sync.Mutex
	created map[string][]claimRef // claims created per mode, reused across cases
	results map[string][]*resourceapi.AllocationResult
	held    []claimRef
}

var (
	sharedEnv     *env
	sharedEnvErr  error
	sharedEnvOnce sync.Once
)

// getEnv starts the plugin once per test binary; TestMain stops it.
func getEnv(tb testing.TB) *env {
	tb.Helper()
	if control == nil {
		tb.Skip(skipReason)
	}
	sharedEnvOnce.Do(func() { sharedEnv, sharedEnvErr = newEnv() })
	if sharedEnvErr != nil {
		tb.Fatalf("start the plugin: %v", sharedEnvErr)
	}
	return sharedEnv
}

func newEnv() (*env, error) {
	// Quiet: the plugin logs every prepare at -v=2 in tests.
	ctx := klog.NewContext(context.Background(), klog.Background().V(1))
	rest, err := control.RESTConfig()
	if err != nil {
		return nil, err
	}
	// The plugin's own defaults, as tierra-kubelet-plugin runs.
	rest.QPS, rest.Burst = plugin.DefaultQPS, plugin.DefaultBurst
	cs, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	e := &env{ctx: ctx, cs: cs, steps: newStepTimes(), created: map[string][]claimRef{}, results: map[string][]*resourceapi.AllocationResult{}}
	if err := e.objects(); err != nil {
		return nil, err
	}
	if e.gpus, err = fakeMachine(ctx); err != nil {
		return nil, err
	}
	if err := e.startPlugin(); err != nil {
		return nil, err
	}
	return e, e.allocator()
}

// objects creates the node (inference tier) and the namespace (tenant
// research, allowed admin-access claims for the monitoring claims it holds).
func (e *env) objects() error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{v1alpha1.NodeTierLabel: v1alpha1.TierInference}}}
	if _, err := e.cs.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		v1alpha1.TenantLabel: "research", "resource.kubernetes.io/admin-access": "true"}}}
	if _, err := e.cs.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	return nil
}

func fakeMachine(ctx context.Context) (*nvgpu.Fake, error) {
	gpus, err := nvgpu.NewFake(ctx, "dgxh200", nvgpu.Options{})
	if err != nil {
		return nil, fmt.Errorf("fake dgxh200: %w", err)
	}
	m, err := gpus.Machine(ctx)
	if err != nil {
		return nil, fmt.Errorf("fake dgxh200: %w", err)
	}
	for _, g := range m.GPUs[4:] {
		if err := gpus.SetMIGMode(ctx, g.UUID, true); err != nil {
			return nil, fmt.Errorf("enable MIG: %w", err)
		}
	}
	return gpus, nil
}

func (e *env) startPlugin() error {
	dir, err := os.MkdirTemp("", "pb") // unix socket paths stay short
	if err != nil {
		return err
	}
	e.dir = dir
	for _, d := range []string{"p", "r"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	e.cfg = plugin.Config{NodeName: nodeName, StateDir: filepath.Join(dir, "state"), CDIDir: filepath.Join(dir, "cdi"),
		PluginDataDir: filepath.Join(dir, "p"), RegistrarDir: filepath.Join(dir, "r"), BootID: "bench-boot",
		// TIERRA_PREPBENCH_FSYNC=1 measures with --checkpoint-fsync.
		CheckpointFsync: os.Getenv("TIERRA_PREPBENCH_FSYNC") == "1"}
	e.driver, err = plugin.Start(e.ctx, e.cfg, plugin.Deps{Client: e.cs, GPUs: e.gpus, Policy: v1alpha1.DefaultTierPolicy(),
		Runner: &sharing.FakeRunner{}, Observe: e.steps.observe,
		// Metrics on, as tierra-kubelet-plugin runs by default.
		Metrics: metrics.NewRegistry()})
	if err != nil {
		return fmt.Errorf("start plugin: %w", err)
	}
	e.socket = filepath.Join(e.cfg.PluginDataDir, "dra.sock")
	return nil
}

// allocator waits for the plugin's slices and builds the scheduler's
// allocator over them.
func (e *env) allocator() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := e.cs.ResourceV1().ResourceSlices().List(e.ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) > 0 && int(list.Items[0].Spec.Pool.ResourceSliceCount) == len(list.Items) {
			slices := make([]*resourceapi.ResourceSlice, 0, len(list.Items))
			for i := range list.Items {
				slices = append(slices, &list.Items[i])
			}
			classes, err := tiers.Render(v1alpha1.DefaultTierPolicy())
			if err != nil {
				return err
			}
			e.alloc = allocator.NewCluster(slices, classes...)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the plugin's ResourceSlices never appeared (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// claimRef is what the kubelet sends for a claim.
type claimRef struct{ name, uid string }

// createClaim stores the claim with the allocation and a pod reservation,
// as the scheduler leaves it.
func (e *env) createClaim(claim *resourceapi.ResourceClaim, result *resourceapi.AllocationResult) (claimRef, error) {
	claim = claim.DeepCopy()
	claim.UID = ""
	created, err := e.cs.ResourceV1().ResourceClaims(namespace).Create(e.ctx, claim, metav1.CreateOptions{})
	if err != nil {
		return claimRef{}, fmt.Errorf("create claim %s: %w", claim.Name, err)
	}
	created.Status.Allocation = result
	created.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: "pod-" + claim.Name, UID: types.UID("pod-" + claim.Name)}}
	if _, err := e.cs.ResourceV1().ResourceClaims(namespace).UpdateStatus(e.ctx, created, metav1.UpdateOptions{}); err != nil {
		return claimRef{}, fmt.Errorf("allocate claim %s: %w", claim.Name, err)
	}
	return claimRef{name: created.Name, uid: string(created.UID)}, nil
}
