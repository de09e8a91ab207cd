package queues

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/test/stack"
)

const timeout = 2 * time.Minute

func poll(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, cond)
	require.NoError(t, err, what)
}

// applyFile applies a file of the repository (relative to its root).
func applyFile(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	require.NoError(t, env.apply.ApplyFiles(ctx, filepath.Join(env.root, path)))
}

// jobPods are the pods the Job controller created for the job.
func jobPods(ctx context.Context, t *testing.T, ns, job string) []corev1.Pod {
	t.Helper()
	pods, err := stack.JobPods(ctx, env.cs, ns, job)
	require.NoError(t, err)
	return pods
}

// waitJobRunning waits until the job has a Running pod and returns it.
func waitJobRunning(ctx context.Context, t *testing.T, ns, job string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	poll(ctx, t, fmt.Sprintf("job %s/%s never ran a pod; its workload: %s", ns, job, workloadSummary(ctx, ns, job)),
		func(ctx context.Context) (bool, error) {
			for _, p := range jobPods(ctx, t, ns, job) {
				if p.Status.Phase == corev1.PodRunning {
					pod = p
					return true, nil
				}
			}
			return false, nil
		})
	return pod
}

// podClaim returns the allocated claim of the pod's only resource claim.
func podClaim(ctx context.Context, t *testing.T, pod corev1.Pod) *resourceapi.ResourceClaim {
	t.Helper()
	require.Len(t, pod.Status.ResourceClaimStatuses, 1, "pod %s claim statuses", pod.Name)
	name := pod.Status.ResourceClaimStatuses[0].ResourceClaimName
	require.NotNil(t, name)
	claim, err := env.cs.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, *name, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, claim.Status.Allocation, "claim %s allocated", claim.Name)
	return claim
}

// claimsOf are the namespace's claims generated for the pods of job.
func claimsOf(ctx context.Context, t *testing.T, ns, job string) []resourceapi.ResourceClaim {
	t.Helper()
	claims, err := env.cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var out []resourceapi.ResourceClaim
	for _, c := range claims.Items {
		if owner := metav1.GetControllerOf(&c); owner != nil && owner.Kind == "Pod" && strings.HasPrefix(owner.Name, job+"-") {
			out = append(out, c)
		}
	}
	return out
}

// workload returns the Kueue Workload of the job (owned by it), nil while
// there is none.
func workload(ctx context.Context, ns, job string) (*unstructured.Unstructured, error) {
	return stack.JobWorkload(ctx, env.dyn, ns, job)
}

// waitCondition waits until the job's Workload has the condition True and
// returns it.
func waitCondition(ctx context.Context, t *testing.T, ns, job, typ string) *unstructured.Unstructured {
	t.Helper()
	var wl *unstructured.Unstructured
	poll(ctx, t, fmt.Sprintf("workload of %s/%s never %s: %s", ns, job, typ, workloadSummary(ctx, ns, job)),
		func(ctx context.Context) (bool, error) {
			var err error
			if wl, err = workload(ctx, ns, job); err != nil || wl == nil {
				return false, err
			}
			s, _, _ := stack.WorkloadCondition(wl, typ)
			return s == "True", nil
		})
	return wl
}

// workloadSummary names the conditions of the job's Workload, for failure
// messages.
func workloadSummary(ctx context.Context, ns, job string) string {
	return stack.WorkloadSummary(ctx, env.dyn, ns, job)
}

// admittedUsage is what Kueue charged the admitted Workload's first pod
// set, by resource name.
func admittedUsage(t *testing.T, wl *unstructured.Unstructured) map[string]any {
	t.Helper()
	sets, _, err := unstructured.NestedSlice(wl.Object, "status", "admission", "podSetAssignments")
	require.NoError(t, err)
	require.NotEmpty(t, sets, "workload %s has no pod set assignments", wl.GetName())
	usage, _, err := unstructured.NestedMap(sets[0].(map[string]any), "resourceUsage")
	require.NoError(t, err)
	return usage
}

// suspended reads the Job's spec.suspend.
func suspended(ctx context.Context, t *testing.T, ns, job string) bool {
	t.Helper()
	j, err := env.cs.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{})
	require.NoError(t, err)
	return ptr.Deref(j.Spec.Suspend, false)
}

// borrowed is how much of resource the ClusterQueue uses beyond its own
// quota, from its status.
func borrowed(ctx context.Context, t *testing.T, cq, resource string) int64 {
	t.Helper()
	obj, err := env.dyn.Resource(stack.KueueClusterQueues).Get(ctx, cq, metav1.GetOptions{})
	require.NoError(t, err)
	flavors, _, _ := unstructured.NestedSlice(obj.Object, "status", "flavorsUsage")
	for _, f := range flavors {
		res, _, _ := unstructured.NestedSlice(f.(map[string]any), "resources")
		for _, r := range res {
			m := r.(map[string]any)
			if m["name"] != resource {
				continue
			}
			b, _ := m["borrowed"].(string)
			if b == "" {
				return 0
			}
			q, err := apiresource.ParseQuantity(b)
			require.NoError(t, err, "clusterqueue %s borrowed %s", cq, resource)
			return q.Value()
		}
	}
	return 0
}

// finishPod reports the pod's containers exited 0, as the kubelet does
// when they end: the simulated node runs no containers, so the test plays
// the container runtime here. The Job controller then completes the Job.
func finishPod(ctx context.Context, t *testing.T, pod corev1.Pod) {
	t.Helper()
	require.NoError(t, stack.FinishPod(ctx, env.cs, pod.Namespace, pod.Name))
}

// deleteJobs deletes the jobs with their pods and waits until the pods and
// their claims are gone (the node unprepared them), then deletes the
// claim templates.
func deleteJobs(ctx context.Context, t *testing.T, ns string, jobs []string, templates ...string) {
	t.Helper()
	for _, j := range jobs {
		err := env.cs.BatchV1().Jobs(ns).Delete(ctx, j, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}
	poll(ctx, t, "jobs, their pods and claims never went", func(ctx context.Context) (bool, error) {
		for _, j := range jobs {
			if _, err := env.cs.BatchV1().Jobs(ns).Get(ctx, j, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
			if len(jobPods(ctx, t, ns, j)) > 0 || len(claimsOf(ctx, t, ns, j)) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
	for _, name := range templates {
		err := env.cs.ResourceV1().ResourceClaimTemplates(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}
}
