package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/test/stack"
)

// pendingFor is how long the test watches the high-priority pod stay
// pending: many scheduling attempts at the scheduler's backoff.
const pendingFor = 15 * time.Second

// The training tier's eight GPUs are held by two low-priority training pods
// (four each); a high-priority inference pod needs one whole GPU, which
// only the training node has. kube-scheduler 1.37.1 does not preempt for
// it: DynamicResources reports a failed allocation UnschedulableAndUnresolvable,
// so preemption skips every node ("Preemption is not helpful"); nor could
// its dry run free devices (no PreFilterExtensions: the victims' claims stay
// allocated in the assume cache). The test asserts that, then evicts one
// victim as a preemptor would: its claim is unprepared on the node and
// deallocated, and the inference pod runs on a freed GPU.
func TestPreemptionForInference(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const ns, train = "research", "dgx-h200-train"
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, ns) })
	applyFile(ctx, t, "demo/priorityclasses.yaml")
	applyFile(ctx, t, "demo/preemption/training-low.yaml")
	victims := map[string]string{} // pod -> claim
	for _, name := range []string{"sweep-a", "sweep-b"} {
		pod := waitRunning(ctx, t, ns, name)
		require.Equal(t, train, pod.Spec.NodeName)
		victims[name] = podClaim(ctx, t, pod).Name
	}
	require.Equal(t, 2, cdiSpecs(t, train))

	applyFile(ctx, t, "demo/preemption/inference-critical.yaml")
	msg := waitEvent(ctx, t, ns, "urgent-inference", "FailedScheduling")
	t.Logf("FailedScheduling: %s", msg)
	assert.Contains(t, msg, "cannot allocate all claims")
	assert.Contains(t, msg, "Preemption is not helpful for scheduling", "upstream does not preempt for DRA devices")
	time.Sleep(pendingFor)
	pod, err := env.cs.CoreV1().Pods(ns).Get(ctx, "urgent-inference", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, pod.Spec.NodeName, "upstream 1.37.1 found no victims: the pod stays pending")
	assert.Empty(t, pod.Status.NominatedNodeName, "no node nominated")
	for name := range victims {
		v, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "victim %s still exists", name)
		assert.Nil(t, v.DeletionTimestamp, "victim %s not preempted", name)
		assert.Equal(t, corev1.PodRunning, v.Status.Phase)
	}
	t.Logf("after %s: %s", pendingFor, stack.EventSummary(ctx, env.cs, ns, "urgent-inference"))

	// Evict one victim, as a preemptor does: delete it.
	claim, err := env.cs.ResourceV1().ResourceClaims(ns).Get(ctx, victims["sweep-a"], metav1.GetOptions{})
	require.NoError(t, err)
	var freed []int64
	for _, r := range claim.Status.Allocation.Devices.Results {
		freed = append(freed, intAttr(t, publishedDevice(ctx, t, r.Pool, r.Device), slices.AttrIndex))
	}
	deletePods(ctx, t, ns, "sweep-a")
	_, err = env.cs.ResourceV1().ResourceClaims(ns).Get(ctx, victims["sweep-a"], metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the victim's claim is deallocated and deleted: %v", err)

	winner := waitRunning(ctx, t, ns, "urgent-inference")
	assert.Equal(t, train, winner.Spec.NodeName)
	won := podClaim(ctx, t, winner)
	require.Len(t, won.Status.Allocation.Devices.Results, 1)
	gpu := intAttr(t, publishedDevice(ctx, t, train, won.Status.Allocation.Devices.Results[0].Device), slices.AttrIndex)
	assert.Contains(t, freed, gpu, "the inference pod got one of the victim's GPUs")
	state := machineState(t, train)
	for _, i := range freed {
		if i != gpu {
			assert.NotEqual(t, nvmlExclusiveProcess, state.GPUs[i].ComputeMode, "GPU %d unprepared after the victim went", i)
		}
	}
	assert.Equal(t, 2, cdiSpecs(t, train), "sweep-b's and the inference pod's CDI specs")
}
