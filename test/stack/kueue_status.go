package stack

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Kueue's resources that the tests and the demo read.
var (
	KueueWorkloads     = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"}
	KueueClusterQueues = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "clusterqueues"}
)

// QueueLabel names the LocalQueue a Job is submitted to.
const QueueLabel = "kueue.x-k8s.io/queue-name"

// JobWorkload returns the Kueue Workload owned by the Job, nil while there
// is none.
func JobWorkload(ctx context.Context, dyn dynamic.Interface, ns, job string) (*unstructured.Unstructured, error) {
	list, err := dyn.Resource(KueueWorkloads).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list workloads in %s: %w", ns, err)
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

// WorkloadCondition returns the status, reason and message of a
// Workload's condition; empty strings when it has none of that type.
func WorkloadCondition(wl *unstructured.Unstructured, typ string) (status, reason, message string) {
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

// WorkloadSummary names the conditions of the job's Workload, for failure
// messages and progress output.
func WorkloadSummary(ctx context.Context, dyn dynamic.Interface, ns, job string) string {
	wl, err := JobWorkload(ctx, dyn, ns, job)
	if err != nil || wl == nil {
		return fmt.Sprintf("no workload (%v)", err)
	}
	conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	var out []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		out = append(out, fmt.Sprintf("%v=%v (%v: %v)", m["type"], m["status"], m["reason"], m["message"]))
	}
	return wl.GetName() + ": " + strings.Join(out, "; ")
}

// JobPods are the pods the Job controller created for the job.
func JobPods(ctx context.Context, cs kubernetes.Interface, ns, job string) ([]corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return nil, fmt.Errorf("list pods of job %s/%s: %w", ns, job, err)
	}
	return pods.Items, nil
}

// FinishPod reports the pod's containers exited 0, as the kubelet does when
// they end: the simulated nodes run no containers, so the caller plays the
// container runtime. The Job controller then completes the pod's Job, and
// the pod's claims are released.
func FinishPod(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cur.Status.Phase = corev1.PodSucceeded
		for i := range cur.Status.ContainerStatuses {
			c := &cur.Status.ContainerStatuses[i]
			started := now
			if c.State.Running != nil {
				started = c.State.Running.StartedAt
			}
			c.Ready, c.Started = false, ptr.To(false)
			c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now,
			}}
		}
		for i := range cur.Status.Conditions {
			if c := &cur.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "PodCompleted", now
			}
		}
		_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("report pod %s/%s Succeeded: %w", ns, name, err)
	}
	return nil
}
