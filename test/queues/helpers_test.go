package queues

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

const timeout = 2 * time.Minute

var (
	workloadsGVR     = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"}
	clusterQueuesGVR = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "clusterqueues"}
)

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
	pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	require.NoError(t, err)
	return pods.Items
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
	list, err := env.dyn.Resource(workloadsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		for _, o := range list.Items[i].GetOwnerReferences() {
			if o.Kind == "Job" && o.Name == job {
				return &list.Items[i], nil
			}
		}
	}
	return nil, nil
}

// condition returns the status and reason of a Workload's condition.
func condition(wl *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
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
			s, _, _ := condition(wl, typ)
			return s == "True", nil
		})
	return wl
}

// workloadSummary names the conditions of the job's Workload, for failure
// messages.
func workloadSummary(ctx context.Context, ns, job string) string {
	wl, err := workload(ctx, ns, job)
	if err != nil || wl == nil {
		return fmt.Sprintf("none (%v)", err)
	}
	conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	var out []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		out = append(out, fmt.Sprintf("%v=%v (%v: %v)", m["type"], m["status"], m["reason"], m["message"]))
	}
	return wl.GetName() + ": " + strings.Join(out, "; ")
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
	obj, err := env.dyn.Resource(clusterQueuesGVR).Get(ctx, cq, metav1.GetOptions{})
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
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := env.cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cur.Status.Phase = corev1.PodSucceeded
		for i := range cur.Status.ContainerStatuses {
			cs := &cur.Status.ContainerStatuses[i]
			started := now
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			cs.Ready, cs.Started = false, ptr.To(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now,
			}}
		}
		for i := range cur.Status.Conditions {
			if c := &cur.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "PodCompleted", now
			}
		}
		_, err = env.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	require.NoError(t, err, "report pod %s/%s Succeeded", pod.Namespace, pod.Name)
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
