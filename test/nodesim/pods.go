package nodesim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/utils/ptr"
)

// Event reasons the pod lifecycle reports; the failures are the kubelet's.
const (
	ReasonFailedPrepare   = "FailedPrepareDynamicResources"
	ReasonFailedUnprepare = "FailedUnprepareDynamicResources"
	ReasonPrepared        = "DynamicResourcesPrepared"
	// ReasonFailedGPUUse: the pod's GPUUseAnnotation could not be acted on.
	ReasonFailedGPUUse = "FailedGPUUse"
)

// podWorkers is how many pods are synced at once.
const podWorkers = 4

// podWorker runs the node's pods: prepare, Running, unprepare, delete.
type podWorker struct {
	client   kubernetes.Interface
	node     string
	mgr      *dra.Manager
	recorder record.EventRecorder
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	procs    *containers
	// gpu runs the fake GPU processes of pods with GPUUseAnnotation.
	gpu *gpuProcesses

	mu   sync.Mutex
	pods map[types.UID]*podEntry

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type podEntry struct {
	pod      *corev1.Pod
	gone     bool // deleted from the API
	prepared bool // prepared by this process, status Running written
	finished bool // terminal, its claims unprepared by this process
}

func newPodWorker(client kubernetes.Interface, node string, mgr *dra.Manager, recorder record.EventRecorder, procs *containers) *podWorker {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + node }))
	return &podWorker{
		client: client, node: node, mgr: mgr, recorder: recorder, factory: factory, procs: procs,
		informer: factory.Core().V1().Pods().Informer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](retryBase, retryMax),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pods-" + node}),
		pods: map[types.UID]*podEntry{},
	}
}

func (w *podWorker) start(ctx context.Context) error {
	ctx, w.cancel = context.WithCancel(ctx)
	_, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj, false) },
		UpdateFunc: func(_, obj any) { w.observe(obj, false) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.observe(obj, true)
		},
	})
	if err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	w.factory.Start(ctx.Done())
	for i := 0; i < podWorkers; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for w.processNext(ctx) {
			}
		}()
	}
	return nil
}

func (w *podWorker) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.queue.ShutDown()
	w.factory.Shutdown()
	w.wg.Wait()
	w.procs.stopAll()
}

func (w *podWorker) synced() bool { return w.informer.HasSynced() }

func (w *podWorker) observe(obj any, gone bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	e := w.pods[pod.UID]
	if e == nil {
		e = &podEntry{}
		w.pods[pod.UID] = e
	}
	e.pod, e.gone = pod, gone
	w.mu.Unlock()
	w.queue.Add(pod.UID)
}

// activePods are the pods whose claims the DRA manager must keep prepared:
// every pod on the node the API still has whose containers have not ended.
func (w *podWorker) activePods() []*corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	var pods []*corev1.Pod
	for _, e := range w.pods {
		if !e.gone && !terminal(e.pod) {
			pods = append(pods, e.pod)
		}
	}
	return pods
}

func (w *podWorker) processNext(ctx context.Context) bool {
	uid, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(uid)
	if err := w.sync(ctx, uid); err != nil {
		klog.FromContext(ctx).V(2).Info("Pod sync failed; retrying", "podUID", uid, "err", err)
		w.queue.AddRateLimited(uid)
		return true
	}
	w.queue.Forget(uid)
	return true
}

func (w *podWorker) sync(ctx context.Context, uid types.UID) error {
	w.mu.Lock()
	e := w.pods[uid]
	var pod *corev1.Pod
	var gone, prepared, finished bool
	if e != nil {
		pod, gone, prepared, finished = e.pod, e.gone, e.prepared, e.finished
	}
	w.mu.Unlock()
	switch {
	case e == nil:
		return nil
	case gone:
		// Deleted behind our back (grace period 0): unprepare, then forget.
		if err := w.release(ctx, pod); err != nil {
			return err
		}
		w.forget(uid)
		return nil
	case pod.DeletionTimestamp != nil:
		return w.terminate(ctx, pod)
	case terminal(pod):
		if finished {
			return nil
		}
		return w.finish(ctx, pod)
	case prepared:
		return nil
	}
	return w.run(ctx, pod)
}

// terminal: the pod's containers ended for good (Succeeded or Failed).
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// finish unprepares the claims of a pod whose containers ended, as the
// kubelet does when it syncs a terminated pod: the object stays (a Job's
// completed pod), its devices go back. Without it, a completed pod's GPUs
// stayed prepared, and the next claim the scheduler gave them was refused.
func (w *podWorker) finish(ctx context.Context, pod *corev1.Pod) error {
	if err := w.release(ctx, pod); err != nil {
		w.recorder.Event(pod, corev1.EventTypeWarning, ReasonFailedUnprepare, err.Error())
		return err
	}
	w.mu.Lock()
	if e := w.pods[pod.UID]; e != nil {
		e.prepared, e.finished = false, true
	}
	w.mu.Unlock()
	return nil
}

func (w *podWorker) forget(uid types.UID) {
	w.mu.Lock()
	delete(w.pods, uid)
	w.mu.Unlock()
}

// prepare and unprepare go through the DRA manager, when there is one.
func (w *podWorker) prepare(ctx context.Context, pod *corev1.Pod) error {
	if w.mgr == nil {
		return nil
	}
	return w.mgr.PrepareResources(ctx, pod)
}

func (w *podWorker) unprepare(ctx context.Context, pod *corev1.Pod) error {
	if w.mgr == nil {
		return nil
	}
	return w.mgr.UnprepareResources(ctx, pod)
}

// run prepares the pod's claims and reports the pod Running.
func (w *podWorker) run(ctx context.Context, pod *corev1.Pod) error {
	if err := w.prepare(ctx, pod); err != nil {
		w.recorder.Event(pod, corev1.EventTypeWarning, ReasonFailedPrepare, err.Error())
		return err
	}
	if devices := w.cdiDevices(pod); len(devices) > 0 {
		w.recorder.Eventf(pod, corev1.EventTypeNormal, ReasonPrepared, "CDI devices: %s", strings.Join(devices, ", "))
	}
	processes := w.procs.handles(pod)
	if err := w.markRunning(ctx, pod, !processes); err != nil {
		return err
	}
	if processes {
		setReady := func(ctx context.Context, ready bool) error { return w.setReady(ctx, pod, ready) }
		if err := w.procs.start(ctx, pod, setReady); err != nil {
			return err
		}
	}
	w.mu.Lock()
	if e := w.pods[pod.UID]; e != nil {
		e.prepared = true
	}
	w.mu.Unlock()
	w.startGPU(ctx, pod)
	return nil
}

// startGPU runs the pod's fake GPU processes (GPUUseAnnotation). A failure
// is a Warning event on the pod, which runs on without them.
func (w *podWorker) startGPU(ctx context.Context, pod *corev1.Pod) {
	if w.gpu == nil {
		return
	}
	if err := w.gpu.start(ctx, pod); err != nil {
		klog.FromContext(ctx).Error(err, "Fake GPU processes not started", "pod", klog.KObj(pod))
		w.recorder.Event(pod, corev1.EventTypeWarning, ReasonFailedGPUUse, err.Error())
	}
}

// stopGPU ends the pod's fake GPU processes.
func (w *podWorker) stopGPU(ctx context.Context, pod *corev1.Pod) {
	if w.gpu == nil {
		return
	}
	if err := w.gpu.stop(pod.UID); err != nil {
		klog.FromContext(ctx).Error(err, "Fake GPU processes not stopped", "pod", klog.KObj(pod))
	}
}

// cdiDevices are the CDI device IDs the runtime would inject, per container.
func (w *podWorker) cdiDevices(pod *corev1.Pod) []string {
	var ids []string
	if w.mgr == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		info, err := w.mgr.GetResources(pod, &pod.Spec.Containers[i])
		if err != nil {
			continue
		}
		for _, d := range info.CDIDevices {
			ids = append(ids, d.Name)
		}
	}
	return ids
}

// release stops the pod's containers and fake GPU processes and unprepares
// its claims: what every way a pod ends (deleted, deleted behind our back,
// or its containers exited) shares.
func (w *podWorker) release(ctx context.Context, pod *corev1.Pod) error {
	w.procs.stop(pod.UID)
	w.stopGPU(ctx, pod)
	return w.unprepare(ctx, pod)
}

// terminate unprepares a deleted pod's claims, then removes the pod object,
// as the kubelet does once its containers have stopped.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod) error {
	if err := w.release(ctx, pod); err != nil {
		w.recorder.Event(pod, corev1.EventTypeWarning, ReasonFailedUnprepare, err.Error())
		return err
	}
	err := w.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// markRunning writes what a kubelet reports once every container started;
// ready says whether they are ready too (no readiness probe to wait for).
func (w *podWorker) markRunning(ctx context.Context, pod *corev1.Pod, ready bool) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := w.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID || cur.Status.Phase == corev1.PodRunning {
			return nil
		}
		cur.Status = runningStatus(cur, ready)
		w.resourceHealth(ctx, cur)
		_, err = w.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("report pod %s/%s Running: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// setReady reports the containers' readiness probes.
func (w *podWorker) setReady(ctx context.Context, pod *corev1.Pod, ready bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := w.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID || cur.DeletionTimestamp != nil {
			return err
		}
		cur.Status = runningStatus(cur, ready)
		w.resourceHealth(ctx, cur)
		_, err = w.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func runningStatus(pod *corev1.Pod, ready bool) corev1.PodStatus {
	now := metav1.NewTime(time.Now())
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.StartTime = &now
	st.HostIP = "127.0.0.1"
	st.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		status := corev1.ConditionTrue
		if t == corev1.ContainersReady || t == corev1.PodReady {
			status = readyStatus
		}
		st.Conditions = setCondition(st.Conditions, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now})
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: ptr.To(true),
			ContainerID: "nodesim://" + string(pod.UID) + "/" + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

func setCondition(conds []corev1.PodCondition, c corev1.PodCondition) []corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == c.Type {
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}
