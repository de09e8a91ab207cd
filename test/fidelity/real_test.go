package fidelity

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/openb"
)

const namespace = "default"

// live is the cluster side of the comparison.
type live struct {
	cs kubernetes.Interface
}

// cellLabel pins a cell's pods to its nodes.
const cellLabel = "fidelity.tierra.dev/cell"

// setup creates the kwok nodes with the trace's cpu and memory, the
// DeviceClass, and every node's slices as the simulation publishes them,
// and waits until every node is Ready and untainted.
func (r *live) setup(ctx context.Context, cells []cell) error {
	if _, err := r.cs.ResourceV1().DeviceClasses().Create(ctx, sim.DeviceClass(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create device class: %w", err)
	}
	total := 0
	for _, c := range cells {
		for i, n := range c.nodes {
			if _, err := r.cs.CoreV1().Nodes().Create(ctx, openb.KwokNode(n, map[string]string{cellLabel: c.name}), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create node %s: %w", n.Name, err)
			}
			for _, s := range c.fix.Slices(i) {
				if _, err := r.cs.ResourceV1().ResourceSlices().Create(ctx, s, metav1.CreateOptions{}); err != nil {
					return fmt.Errorf("create slice %s: %w", s.Name, err)
				}
			}
		}
		total += len(c.nodes)
	}
	if err := r.checkSlicesKept(ctx); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("list nodes: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if isReady(&list.Items[i]) && len(list.Items[i].Spec.Taints) == 0 {
				ready++
			}
		}
		return ready == total, nil
	})
}

// checkSlicesKept fails when the API server dropped the fields the
// simulation depends on (a disabled DRAConsumableCapacity gate).
func (r *live) checkSlicesKept(ctx context.Context) error {
	list, err := r.cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("list slices: %w", err)
	}
	for _, s := range list.Items {
		for _, d := range s.Spec.Devices {
			if d.AllowMultipleAllocations == nil || !*d.AllowMultipleAllocations || len(d.Capacity) == 0 {
				return fmt.Errorf("API server dropped allowMultipleAllocations or capacity from device %s of slice %s", d.Name, s.Name)
			}
		}
	}
	return nil
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// outcome is what the real scheduler did with one pod.
type outcome struct {
	node    string // "" when not bound
	message string // the PodScheduled condition's message when unschedulable
	timeout bool   // neither bound nor unschedulable in time
}

// schedule creates each pod (and its claim) in order and waits until the
// scheduler has bound it or marked it unschedulable before the next one:
// the simulation's sequential arrival.
func (r *live) schedule(ctx context.Context, c cell) ([]outcome, error) {
	out := make([]outcome, len(c.pods))
	for i, p := range c.pods {
		if err := openb.Create(ctx, r.cs, c.fix, p, openb.Placement{Namespace: namespace, NodeSelector: map[string]string{cellLabel: c.name}}); err != nil {
			return nil, err
		}
		o, err := r.await(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// await polls the pod until it is bound or unschedulable.
func (r *live) await(ctx context.Context, name string) (outcome, error) {
	var o outcome
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		pod, err := r.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("get pod %s: %w", name, err)
		}
		if pod.Spec.NodeName != "" {
			o.node = pod.Spec.NodeName
			return true, nil
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				o.message = c.Message
				return true, nil
			}
		}
		return false, nil
	})
	if wait.Interrupted(err) && ctx.Err() == nil {
		return outcome{timeout: true}, nil
	}
	if err != nil {
		return o, fmt.Errorf("await pod %s: %w", name, err)
	}
	return o, nil
}

// final lists where each pod ended up, catching pods the scheduler bound
// after first marking them unschedulable.
func (r *live) final(ctx context.Context) (map[string]string, error) {
	list, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		out[p.Name] = p.Spec.NodeName
	}
	return out, nil
}

// reasons shortens unschedulable messages to their first clause, for a
// tally in the log.
func reason(msg string) string {
	if i := strings.Index(msg, "preemption:"); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}
