package queues

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/test/stack"
)

// hold is how long a queued Job is watched to stay queued.
const hold = 5 * time.Second

// Two training Jobs of four GPUs each against the training ClusterQueue's
// quota of four: Kueue admits one, whose pod gets four H200s; the other
// stays suspended with no pod and no claim until the first finishes, then
// runs on four GPUs of its own.
func TestSecondTrainingJobWaitsForQuota(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const ns = "research"
	jobs := []string{"train-a", "train-b"}
	t.Cleanup(func() { deleteJobs(context.WithoutCancel(ctx), t, ns, jobs, "train-4gpu") })
	applyFile(ctx, t, "demo/queues/kueue-training.yaml")

	// Kueue admits in queue order; which of the two was first is not ours
	// to know, so the running one decides.
	var first, second string
	var pod corev1.Pod
	poll(ctx, t, "no training job ran", func(ctx context.Context) (bool, error) {
		for i, j := range jobs {
			for _, p := range jobPods(ctx, t, ns, j) {
				if p.Status.Phase == corev1.PodRunning {
					first, second, pod = j, jobs[1-i], p
					return true, nil
				}
			}
		}
		return false, nil
	})
	wl := waitCondition(ctx, t, ns, first, "Admitted")
	assert.Equal(t, "4", admittedUsage(t, wl)["tierra.dev/training-gpu"], "Kueue charged the claim template's four training GPUs")
	assert.Equal(t, "dgx-h200-train", pod.Spec.NodeName)
	assert.Len(t, podClaim(ctx, t, pod).Status.Allocation.Devices.Results, 4)

	// The second waits admitted-nothing: suspended, no pod, no claim.
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		require.True(t, suspended(ctx, t, ns, second), "%s unsuspended while %s holds the quota", second, first)
		require.Empty(t, jobPods(ctx, t, ns, second), "%s has pods while queued", second)
		require.Empty(t, claimsOf(ctx, t, ns, second), "%s has claims while queued", second)
		time.Sleep(500 * time.Millisecond)
	}
	queued, err := workload(ctx, ns, second)
	require.NoError(t, err)
	require.NotNil(t, queued, "Kueue made a Workload for %s", second)
	status, _, msg := stack.WorkloadCondition(queued, "QuotaReserved")
	assert.NotEqual(t, "True", status, "the queued workload reserved no quota")
	t.Logf("%s queued: QuotaReserved=%q %s", second, status, msg)
	assert.Contains(t, msg, "insufficient unused quota for tierra.dev/training-gpu", "Kueue says why it waits")

	// The first finishes (and its Job is removed: ttlSecondsAfterFinished):
	// Kueue releases its quota and admits the second.
	finishPod(ctx, t, pod)
	next := waitJobRunning(ctx, t, ns, second)
	assert.False(t, suspended(ctx, t, ns, second))
	assert.Equal(t, "dgx-h200-train", next.Spec.NodeName)
	assert.Len(t, podClaim(ctx, t, next).Status.Allocation.Devices.Results, 4)
}

// A dev Job borrows the inference ClusterQueue's idle quota (dev has none
// of its own) and runs on two MIG slices; when inference asks for its
// quota, Kueue preempts the borrower: the dev Job is suspended, its pod
// and claims go, and the inference Job runs.
func TestDevBorrowsInferenceQuotaUntilReclaimed(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		deleteJobs(ctx, t, "product", []string{"chat-batch"}, "chat-batch")
		deleteJobs(ctx, t, "research", []string{"dev-sweep"}, "dev-sweep")
	})
	applyFile(ctx, t, "demo/queues/kueue-dev-borrow.yaml")
	dev := waitJobRunning(ctx, t, "research", "dev-sweep")
	wl := waitCondition(ctx, t, "research", "dev-sweep", "Admitted")
	assert.Equal(t, "2", admittedUsage(t, wl)["tierra.dev/inference-gpu"])
	assert.Equal(t, "dgx-h200-infer", dev.Spec.NodeName)
	assert.Len(t, podClaim(ctx, t, dev).Status.Allocation.Devices.Results, 2)
	poll(ctx, t, "dev never reported borrowing inference quota", func(ctx context.Context) (bool, error) {
		return borrowed(ctx, t, "dev", "tierra.dev/inference-gpu") == 2, nil
	})

	applyFile(ctx, t, "demo/queues/kueue-inference-reclaim.yaml")
	inf := waitJobRunning(ctx, t, "product", "chat-batch")
	assert.Equal(t, "dgx-h200-infer", inf.Spec.NodeName)
	assert.Len(t, podClaim(ctx, t, inf).Status.Allocation.Devices.Results, 2)

	evicted, err := workload(ctx, "research", "dev-sweep")
	require.NoError(t, err)
	require.NotNil(t, evicted)
	status, reason, msg := stack.WorkloadCondition(evicted, "Preempted")
	t.Logf("dev-sweep: Preempted=%s %s: %s", status, reason, msg)
	assert.Equal(t, "True", status, "Kueue preempted the borrower: %s", workloadSummary(ctx, "research", "dev-sweep"))
	assert.Equal(t, "InCohortReclamation", reason)
	poll(ctx, t, "the preempted dev job's pod and claims never went", func(ctx context.Context) (bool, error) {
		return len(jobPods(ctx, t, "research", "dev-sweep")) == 0 && len(claimsOf(ctx, t, "research", "dev-sweep")) == 0, nil
	})
	assert.True(t, suspended(ctx, t, "research", "dev-sweep"), "the preempted job waits, suspended")
	poll(ctx, t, "dev still borrows once reclaimed", func(ctx context.Context) (bool, error) {
		return borrowed(ctx, t, "dev", "tierra.dev/inference-gpu") == 0, nil
	})
}
