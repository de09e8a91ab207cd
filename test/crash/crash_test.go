package crash

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/nodesim"
	"github.com/tierra-gpu/tierra/test/stack"
)

const (
	namespace = "crash"
	// extraRuns are the random runs after every (mode, fail point) pair
	// (41) has run once with each follow-up (prepare, unprepare); TIERRA_CRASH_RUNS overrides the total,
	// TIERRA_CRASH_SEED replays a seed and TIERRA_CRASH_MODES (e.g.
	// "mps,timeslice") keeps the pairs of those modes only.
	extraRuns = 4
)

// suite is what every run shares: the control plane, the plugin binary and
// the stand-ins for the MPS control daemon and nvidia-smi.
type suite struct {
	ctx            context.Context
	cs             kubernetes.Interface
	bin            string
	mpsCmd, smiCmd string
	kubeconfig     string
	policy         *v1alpha1.TierPolicy
	policyFile     string
}

func TestCrashAtEveryFailPoint(t *testing.T) {
	s := setup(t)
	pairs := allPairs()
	if v := os.Getenv("TIERRA_CRASH_MODES"); v != "" {
		keep := strings.Split(v, ",")
		pairs = slices.DeleteFunc(pairs, func(p pair) bool { return !slices.Contains(keep, string(p.mode)) })
		require.NotEmpty(t, pairs, "TIERRA_CRASH_MODES=%s: want some of %v", v, modes)
	}
	// Every (mode, fail point, follow-up) first, in random order; then
	// random ones.
	var cases []run
	for _, p := range pairs {
		cases = append(cases, run{mode: p.mode, fp: p.fp}, run{mode: p.mode, fp: p.fp, thenPrepare: true})
	}
	seed, runs := uint64(time.Now().UnixNano()), len(cases)+extraRuns
	if v := os.Getenv("TIERRA_CRASH_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	if v := os.Getenv("TIERRA_CRASH_RUNS"); v != "" {
		var err error
		runs, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with TIERRA_CRASH_SEED=%d), %d runs", seed, seed, runs)
	rng := rand.New(rand.NewPCG(seed, 0))
	rng.Shuffle(len(cases), func(i, j int) { cases[i], cases[j] = cases[j], cases[i] })
	hits := map[string]int{}
	for i := range runs {
		r := cases[rng.IntN(len(cases))]
		if i < len(cases) {
			r = cases[i]
		}
		r.i = i
		hits[string(r.mode)+" "+r.fp]++
		if !t.Run(r.String(), func(t *testing.T) { s.crashRun(t, r) }) {
			t.Fatalf("run %d failed: replay with TIERRA_CRASH_SEED=%d", i, seed)
		}
	}
	t.Logf("%d (mode, fail point) pairs; hit: %v", len(pairs), hits)
}

// run is one randomised crash: a claim mode, a fail point, and what the
// kubelet asks of the restarted plugin.
type run struct {
	i           int
	mode        mode
	fp          string
	thenPrepare bool
}

type pair struct {
	mode mode
	fp   string
}

// allPairs are the fail points each mode passes.
func allPairs() []pair {
	var out []pair
	for _, m := range modes {
		for _, fp := range slices.Concat(prepare.PrepareFailPoints, prepare.UnprepareFailPoints) {
			if applies(fp, m) {
				out = append(out, pair{mode: m, fp: fp})
			}
		}
	}
	return out
}

// applies reports whether a claim of the mode passes the fail point.
func applies(fp string, m mode) bool {
	switch fp {
	case prepare.FPPrepareShared:
		return m.soft()
	case prepare.FPPrepareMIGCreated, prepare.FPPrepareMIGRecorded, prepare.FPUnprepareCIDestroyed, prepare.FPUnprepareGIDestroyed:
		return m == modeMIG
	case prepare.FPPrepareModeRecorded, prepare.FPPrepareModeSet, prepare.FPUnprepareModeRestored:
		return m == modeExclusive
	}
	return true
}

func (r run) String() string {
	then := "unprepare"
	if r.thenPrepare {
		then = "prepare"
	}
	return fmt.Sprintf("%02d-%s-%s-then-%s", r.i, r.mode, r.fp, then)
}

func (s *suite) crashRun(t *testing.T, r run) {
	n := s.newNode(t, r.mode)
	claim := s.claim(t, n, r)
	n.start(t, r.fp)
	if slices.Contains(prepare.PrepareFailPoints, r.fp) {
		_, err := n.prepare(s.ctx, claim.ref)
		require.Error(t, err, "prepare must not succeed: the fail point kills the plugin")
	} else {
		_, err := n.prepare(s.ctx, claim.ref)
		require.NoError(t, err)
		require.Error(t, n.unprepare(s.ctx, claim.ref), "unprepare must not succeed: the fail point kills the plugin")
	}
	n.waitKilled(t, r.fp)

	n.start(t, "")
	defer n.stop(t)
	if r.thenPrepare {
		res, err := n.prepare(s.ctx, claim.ref)
		require.NoError(t, err, "prepare after the crash")
		require.Len(t, res.Devices, 1)
		require.Equal(t, claim.wantIDs, res.Devices[0].CdiDeviceIds, "CDI IDs after the crash")
		n.assertPreparedOnce(t, claim, "prepared after the crash")
		again, err := n.prepare(s.ctx, claim.ref)
		require.NoError(t, err, "prepare again")
		require.Equal(t, claim.wantIDs, again.Devices[0].CdiDeviceIds)
		n.assertPreparedOnce(t, claim, "prepared twice")
	}
	require.NoError(t, n.unprepare(s.ctx, claim.ref), "unprepare after the crash")
	n.assertClean(t, "unprepared after the crash")
}

// setup starts the control plane, builds the plugin and creates the node
// and namespace.
func setup(t *testing.T) *suite {
	if err := cluster.CheckBinaries("", false); err != nil {
		t.Skipf("control plane: %v; run %s", err, cluster.BuildCommand)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &suite{ctx: ctx}
	s.bin = buildPlugin(t)
	s.mpsCmd, s.smiCmd = buildStandIns(t)
	dir, err := os.MkdirTemp("", "tierra-crash-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "cluster"), StopWithParent: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	s.kubeconfig = c.Kubeconfig()
	s.cs, err = c.Clientset()
	require.NoError(t, err)
	s.policy = crashPolicy()
	policy, err := yaml.Marshal(s.policy)
	require.NoError(t, err)
	s.policyFile = filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(s.policyFile, policy, 0o644))
	for _, m := range []mode{modeMIG, modeMPS, modeMPSPod, modeTimeSlice} {
		_, err = s.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.node(),
			Labels: map[string]string{v1alpha1.NodeTierLabel: m.tier()}}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	for _, ns := range []string{namespace, daemonNamespace} {
		_, err = s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// The kubelet of modeMPSPod's node: it runs the MPS daemon pods, whose
	// image is the plugin binary, and outlives every plugin it kills.
	stop, err := nodesim.RunPods(ctx, s.cs, modeMPSPod.node(), map[string]string{daemonImage: s.bin}, dir, io.Discard)
	require.NoError(t, err)
	t.Cleanup(stop)
	return s
}

// The MPS daemon pods of modeMPSPod: their namespace and image.
const (
	daemonNamespace = "crash-system"
	daemonImage     = "tierra.dev/tierra:crash"
)

func buildPlugin(t *testing.T) string {
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	return goBuild(t, root, "./cmd/tierra-kubelet-plugin", "tierra-kubelet-plugin")
}

// buildStandIns builds fakesharing and links it as the two commands it
// stands in for.
func buildStandIns(t *testing.T) (mps, smi string) {
	bin := goBuild(t, ".", "./fakesharing", "fakesharing")
	mps, smi = filepath.Join(filepath.Dir(bin), "nvidia-cuda-mps-control"), filepath.Join(filepath.Dir(bin), "nvidia-smi")
	require.NoError(t, os.Symlink(bin, mps))
	require.NoError(t, os.Symlink(bin, smi))
	return mps, smi
}

func goBuild(t *testing.T, dir, pkg, name string) string {
	bin := filepath.Join(t.TempDir(), name)
	require.NoError(t, stack.GoBuild(context.Background(), dir, pkg, bin))
	return bin
}

// newNode makes a run's directories and its fake machine, with MIG on
// GPUs 4-7 of the inference tier's node.
func (s *suite) newNode(t *testing.T, m mode) *node {
	dir := t.TempDir()
	n := &node{name: m.node(), mpsPods: m == modeMPSPod, cs: s.cs, bin: s.bin, mpsCmd: s.mpsCmd, smiCmd: s.smiCmd, kubeconfig: s.kubeconfig, policyFile: s.policyFile, dir: dir,
		stateDir: filepath.Join(dir, "state"), cdiDir: filepath.Join(dir, "cdi"), smiDir: filepath.Join(dir, "nvidia-smi"),
		fakeState: filepath.Join(dir, "machine.json")}
	for _, p := range []*string{&n.dataDir, &n.regDir} {
		d, err := os.MkdirTemp("", "c") // unix socket paths stay short
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		*p = d
	}
	log, err := os.Create(filepath.Join(dir, "plugin.log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("plugin log:\n%s", out)
		}
	})
	n.log = log
	t.Setenv(nvgpu.FakeStateEnv, n.fakeState)
	f, err := nvgpu.NewFake(s.ctx, "dgxh200", nvgpu.Options{})
	require.NoError(t, err)
	machine, err := f.Machine(s.ctx)
	require.NoError(t, err)
	for _, g := range machine.GPUs[4:] {
		if m.soft() {
			break
		}
		require.NoError(t, f.SetMIGMode(s.ctx, g.UUID, true))
	}
	require.NoError(t, f.Close())
	return n
}

type allocatedClaim struct {
	ref     claimRef
	mode    mode
	gpu     string // UUID of the allocated device's GPU
	wantIDs []string
}

// claim creates the run's claim, allocated against the published slices
// and reserved for a pod, as the scheduler leaves it.
func (s *suite) claim(t *testing.T, n *node, r run) allocatedClaim {
	name := fmt.Sprintf("claim-%d", r.i)
	w := tierratest.MakeClaim(name, namespace)
	switch r.mode {
	case modeMIG:
		w = w.Request("req", tiers.ClassMIG).Selector(`device.attributes["gpu.tierra.dev"].migProfile == "3g.71gb"`)
	case modeExclusive:
		w = w.Request("req", tiers.ClassGPU)
	default:
		w = w.Request("req", tiers.ClassName(r.mode.tier()))
	}
	claim := w.Obj()
	classes, err := tiers.Render(s.policy)
	require.NoError(t, err)
	published := s.slices(t, n)
	result, err := allocator.NewCluster(published, classes...).AllocateResult(s.ctx, n.name, claim)
	require.NoError(t, err)
	require.NotNil(t, result, "claim does not fit")
	claim.UID = ""
	claim, err = s.cs.ResourceV1().ResourceClaims(namespace).Create(s.ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)
	claim.Status.Allocation = result
	claim.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: "pod-" + name, UID: types.UID("pod-uid-" + name)}}
	claim, err = s.cs.ResourceV1().ResourceClaims(namespace).UpdateStatus(s.ctx, claim, metav1.UpdateOptions{})
	require.NoError(t, err)
	dev := result.Devices.Results[0]
	uid := string(claim.UID)
	return allocatedClaim{ref: claimRef{namespace: namespace, name: name, uid: uid}, mode: r.mode, gpu: deviceUUID(t, published, dev.Device),
		wantIDs: []string{v1alpha1.DriverName + "/claim=" + uid + "-" + dev.Request + "-" + dev.Device}}
}

// slices are the node's published ResourceSlices; the node's first run's
// plugin publishes them, and later runs publish the same.
func (s *suite) slices(t *testing.T, n *node) []*resourceapi.ResourceSlice {
	opts := metav1.ListOptions{FieldSelector: resourceapi.ResourceSliceSelectorNodeName + "=" + n.name}
	list, err := s.cs.ResourceV1().ResourceSlices().List(s.ctx, opts)
	require.NoError(t, err)
	if len(list.Items) == 0 {
		n.start(t, "")
		require.Eventually(t, func() bool {
			list, err = s.cs.ResourceV1().ResourceSlices().List(s.ctx, opts)
			return err == nil && len(list.Items) > 0 && int(list.Items[0].Spec.Pool.ResourceSliceCount) == len(list.Items)
		}, 30*time.Second, 50*time.Millisecond, "published slices")
		n.stop(t)
	}
	out := make([]*resourceapi.ResourceSlice, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out
}
