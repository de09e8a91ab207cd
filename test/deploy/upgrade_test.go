package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const (
	upgradeNode = "node-upgrade"
	upgradeNS   = "upgrade"
	// churnClaims are prepared and unprepared in turn during the rollout.
	churnClaims = 4
	// callsPerPhase is how many calls each phase of the rollout must see
	// served: old alone, both running, new alone.
	callsPerPhase = 20
)

type allocatedClaim struct {
	ref     claimRef
	wantIDs []string
}

// testUpgrade rolls the plugin DaemonSet on one node as maxSurge 1 /
// maxUnavailable 0 does: the old pod runs, the new pod starts beside it on
// the same host directories with its own pod UID, registers, the kubelet
// switches to it, the old pod gets SIGTERM. Claims are prepared and
// unprepared continuously throughout; not one call may fail. Both pods run
// the real binary, configured from the rendered DaemonSet, with service
// account tokens bound to their pods: the chart's RBAC and node-slices
// policy are what they get.
func (s *suite) testUpgrade(t *testing.T) {
	ds, bin, dirs, extra := s.rolloutSetup(t)
	kl := newKubelet(dirs["/var/lib/kubelet/plugins_registry"])

	oldPod := s.podOn(t, pluginName, "plugin-old", upgradeNode)
	old := s.startPlugin(t, bin, ds, dirs, oldPod, extra...)
	oldEP, err := kl.waitRegistration(s.ctx, 60*time.Second)
	require.NoError(t, err, "the old plugin registers")
	defer kl.closeAll(oldEP)
	claims := s.allocateClaims(t, s.waitSlices(t, upgradeNode), churnClaims+1)
	kept := claims[churnClaims]
	ids, by, err := kl.prepare(s.ctx, kept.ref)
	require.NoError(t, err)
	require.Equal(t, kept.wantIDs, ids)
	require.Equal(t, string(oldPod.UID), socketOwner(by))

	c := startChurn(s.ctx, kl, claims[:churnClaims])
	defer c.stop()
	require.NoError(t, c.waitServed(s.ctx, string(oldPod.UID), callsPerPhase, time.Minute), "old plugin alone")

	newPod := s.podOn(t, pluginName, "plugin-new", upgradeNode)
	t0 := time.Now()
	newer := s.startPlugin(t, bin, ds, dirs, newPod, extra...)
	newEP, err := kl.waitRegistration(s.ctx, 60*time.Second)
	require.NoError(t, err, "the new plugin registers beside the old one")
	defer kl.closeAll(newEP)
	t.Logf("new plugin registered %s after its start; old served %d calls so far", time.Since(t0).Round(time.Millisecond), c.servedBy(string(oldPod.UID)))
	require.NoError(t, c.waitServed(s.ctx, string(newPod.UID), callsPerPhase, time.Minute), "both running")
	// The DaemonSet controller deletes the old pod once the new one has
	// been ready (its probe) for minReadySeconds.
	container := ds.Spec.Template.Spec.Containers[0]
	require.Eventually(t, func() bool { return newer.ready(t, container) }, 30*time.Second, 100*time.Millisecond, "the new pod's readiness probe")
	require.True(t, old.ready(t, container), "both pods ready during the surge")
	time.Sleep(time.Duration(ds.Spec.MinReadySeconds) * time.Second)
	old.stop(t)
	assert.False(t, old.ready(t, container), "the stopped pod is not ready (its socket is gone)")
	served := c.servedBy(string(newPod.UID))
	require.NoError(t, c.waitServed(s.ctx, string(newPod.UID), served+callsPerPhase, time.Minute), "new plugin alone")
	c.stop()

	c.mu.Lock()
	t.Logf("rollout: %d calls, served by old %d, by new %d, failures %d; prepare p50 %s, max %s",
		c.calls, c.served[string(oldPod.UID)], c.served[string(newPod.UID)], len(c.failures), quantile(c.latency, 0.5), quantile(c.latency, 1))
	require.Empty(t, c.failures, "prepare and unprepare must never fail during a rollout")
	c.mu.Unlock()

	// A claim the old pod prepared: the new one answers the kubelet's
	// repeated prepare with the same devices and unprepares it.
	ids, by, err = kl.prepare(s.ctx, kept.ref)
	require.NoError(t, err)
	assert.Equal(t, kept.wantIDs, ids, "same CDI devices after the upgrade")
	assert.Equal(t, string(newPod.UID), socketOwner(by))
	_, err = kl.unprepare(s.ctx, kept.ref)
	require.NoError(t, err)

	assert.Empty(t, regularFiles(t, dirs.local("/var/run/cdi")), "CDI specs left")
	assert.Empty(t, regularFiles(t, filepath.Join(dirs.local("/var/lib/tierra"), "checkpoint")), "checkpoint records left")
	_, err = os.Stat(oldEP.draSocket)
	assert.ErrorIs(t, err, os.ErrNotExist, "the old pod removed its socket")
	_, err = os.Stat(newEP.draSocket)
	assert.NoError(t, err, "the new pod serves")
	newer.stop(t)
}

// rolloutSetup renders the DaemonSet with a fake machine, builds the plugin,
// creates the node, its host directories and the namespace, and returns the
// extra environment that points the plugins at the built-in default policy.
func (s *suite) rolloutSetup(t *testing.T) (*appsv1.DaemonSet, string, hostDirs, []string) {
	t.Helper()
	ch := newChart(t)
	out, err := ch.template("plugin.machine=fake:dgxh200")
	require.NoError(t, err)
	ds := &appsv1.DaemonSet{}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, decode(t, out), "DaemonSet", pluginName).Object, ds))
	t0 := time.Now()
	bin := buildPlugin(t, s.root)
	t.Logf("plugin built in %s", time.Since(t0).Round(time.Millisecond))

	_, err = s.cs.CoreV1().Nodes().Create(s.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: upgradeNode,
		Labels: map[string]string{v1alpha1.NodeTierLabel: v1alpha1.TierInference}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, ensureNamespace(s.ctx, s.cs, upgradeNS, nil))
	policy, err := yaml.Marshal(v1alpha1.DefaultTierPolicy())
	require.NoError(t, err)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, policy, 0o644))
	// The plugins follow the built-in default policy, not the demo's.
	extra := []string{"TIERRA_TIER_POLICY=absent-in-this-test", "TIERRA_TIER_POLICY_FILE=" + policyFile}
	return ds, bin, newHostDirs(t, ds), extra
}

// waitSlices waits until the node's pool is published completely.
func (s *suite) waitSlices(t *testing.T, node string) []*resourceapi.ResourceSlice {
	t.Helper()
	var out []*resourceapi.ResourceSlice
	err := wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := s.cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, err
		}
		out = out[:0]
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		return len(out) > 0 && int(out[0].Spec.Pool.ResourceSliceCount) == len(out), nil
	})
	require.NoError(t, err, "node %s's slices never published", node)
	return out
}

// allocateClaims creates n claims of a whole GPU each, allocated (by the
// scheduler's allocator) to distinct devices of the node and reserved for
// a pod, as the scheduler leaves them.
func (s *suite) allocateClaims(t *testing.T, published []*resourceapi.ResourceSlice, n int) []allocatedClaim {
	t.Helper()
	classes, err := tiers.Render(v1alpha1.DefaultTierPolicy())
	require.NoError(t, err)
	cl := allocator.NewCluster(published, classes...)
	var out []allocatedClaim
	for i := range n {
		claim := tierratest.MakeClaim("gpu-"+string(rune('a'+i)), upgradeNS).Request("req", tiers.ClassGPU).Obj()
		claim.UID = ""
		claim, err := s.cs.ResourceV1().ResourceClaims(upgradeNS).Create(s.ctx, claim, metav1.CreateOptions{})
		require.NoError(t, err)
		result, err := cl.AllocateResult(s.ctx, upgradeNode, claim)
		require.NoError(t, err)
		require.NotNil(t, result, "claim %d does not fit", i)
		claim.Status.Allocation = result
		claim.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: "pod-" + claim.Name, UID: types.UID("pod-uid-" + claim.Name)}}
		claim, err = s.cs.ResourceV1().ResourceClaims(upgradeNS).UpdateStatus(s.ctx, claim, metav1.UpdateOptions{})
		require.NoError(t, err)
		dev := result.Devices.Results[0]
		uid := string(claim.UID)
		out = append(out, allocatedClaim{ref: claimRef{namespace: upgradeNS, name: claim.Name, uid: uid},
			wantIDs: []string{v1alpha1.DriverName + "/claim=" + uid + "-" + dev.Request + "-" + dev.Device}})
	}
	return out
}

func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))].Round(time.Microsecond)
}
