package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/openb"
)

const namespace = "default"

// cellLabel pins a cell's pods to its nodes.
const cellLabel = "scheduler.tierra.dev/cell"

// live is one cell on the cluster: its nodes, their slices as the
// simulation publishes them, and the scheduler its pods name.
type live struct {
	cell
	fix       *sim.Fixture
	scheduler string
}

// createNodes creates the kwok nodes and their slices.
func createNodes(ctx context.Context, cs kubernetes.Interface, l live) error {
	for i, n := range l.nodes {
		if _, err := cs.CoreV1().Nodes().Create(ctx, openb.KwokNode(n, map[string]string{cellLabel: l.name}), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		for _, s := range l.fix.Slices(i) {
			if _, err := cs.ResourceV1().ResourceSlices().Create(ctx, s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create slice %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// waitReady waits until want nodes are Ready and untainted.
func waitReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("list nodes: %w", err)
		}
		ready := 0
		for i := range list.Items {
			n := &list.Items[i]
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && len(n.Spec.Taints) == 0 {
					ready++
				}
			}
		}
		return ready == want, nil
	})
}

// watcher tells when pods are bound or marked unschedulable, from one
// watch on every pod instead of a poll per pod.
type watcher struct {
	mu      sync.Mutex
	waiters map[string]chan string
	done    map[string]string
}

func newWatcher(ctx context.Context, cs kubernetes.Interface) (*watcher, error) {
	w := &watcher{waiters: map[string]chan string{}, done: map[string]string{}}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.observe,
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	}); err != nil {
		return nil, fmt.Errorf("pod handler: %w", err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod informer did not sync")
	}
	return w, nil
}

func (w *watcher) observe(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	node, settled := pod.Spec.NodeName, pod.Spec.NodeName != ""
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			settled = true
		}
	}
	if !settled {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.done[pod.Name]; seen {
		return
	}
	w.done[pod.Name] = node
	if ch := w.waiters[pod.Name]; ch != nil {
		ch <- node
		delete(w.waiters, pod.Name)
	}
}

// expect registers interest in a pod before it is created.
func (w *watcher) expect(name string) <-chan string {
	ch := make(chan string, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if node, ok := w.done[name]; ok {
		ch <- node
		return ch
	}
	w.waiters[name] = ch
	return ch
}

// progressEvery is how often a long run says how far it got; short runs
// (the fidelity test's) print nothing.
const progressEvery = time.Minute

// schedule creates each pod (and its claim) in order and waits until the
// scheduler has bound it or marked it unschedulable before the next one:
// the simulation's sequential arrival. It returns each pod's node, "" for
// a pod left unscheduled (also one still pending after 20 s). A pod left
// unscheduled is deleted with its claim, as the simulation drops it: kept,
// the scheduler would retry every such pod on each later arrival (the
// full-cluster run slowed to one pod per 20 s once ~2,000 waited), and one
// that fit later would hold devices the table does not count.
func schedule(ctx context.Context, cs kubernetes.Interface, w *watcher, l live) ([]string, error) {
	out := make([]string, len(l.pods))
	t0, last, placed := time.Now(), time.Now(), 0
	for i, p := range l.pods {
		if time.Since(last) >= progressEvery {
			last = time.Now()
			fmt.Printf("%s %s: %d/%d pods submitted, %d placed, %s\n", last.Format(time.TimeOnly), l.name, i, len(l.pods), placed, last.Sub(t0).Round(time.Second))
		}
		ch := w.expect(p.Name)
		if err := openb.Create(ctx, cs, l.fix, p, openb.Placement{Namespace: namespace, NodeSelector: map[string]string{cellLabel: l.name}, SchedulerName: l.scheduler}); err != nil {
			return nil, err
		}
		select {
		case out[i] = <-ch:
		case <-time.After(20 * time.Second):
		case <-ctx.Done():
			return nil, fmt.Errorf("await pod %s: %w", p.Name, ctx.Err())
		}
		if out[i] != "" {
			placed++
			continue
		}
		if err := drop(ctx, cs, p.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// drop deletes an unscheduled pod and its claim (named after the pod).
func drop(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete unscheduled pod %s: %w", name, err)
	}
	err = cs.ResourceV1().ResourceClaims(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete claim of unscheduled pod %s: %w", name, err)
	}
	return nil
}
