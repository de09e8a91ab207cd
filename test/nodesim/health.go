package nodesim

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// InjectFault has the node's fake machine raise fault (an XID, an ECC
// error, a GPU off the bus or back on it): the plugin's fake picks it up
// from the faults directory within a few tens of milliseconds.
func (n *Node) InjectFault(fault nvgpu.FakeFault) error {
	if err := nvgpu.WriteFakeFault(n.paths.faults, fault); err != nil {
		return fmt.Errorf("inject fault into node %s: %w", n.opts.Name, err)
	}
	return nil
}

// HealthStatus is the health of the node's GPUs as its plugin last
// recorded it in its state directory: what `tierra inspect --state-dir`
// shows.
func (n *Node) HealthStatus() (health.Status, error) {
	s, err := health.ReadStatus(n.paths.state)
	if err != nil {
		return health.Status{}, fmt.Errorf("node %s: %w", n.opts.Name, err)
	}
	return s, nil
}

// reportHealth is the kubelet's status manager for KEP-4680: each time the
// DRA manager says the health of devices some pods hold changed (the
// plugin's WatchHealthStatus stream), those pods' containerStatuses get
// their allocatedResourcesStatus again.
func (k *kubelet) reportHealth(ctx context.Context, n *Node) {
	logger := klog.FromContext(ctx).WithName("health")
	updates := k.mgr.Updates()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.stopCh:
			return
		case u := <-updates:
			for _, uid := range u.PodUIDs {
				if err := k.pods.writeHealth(ctx, types.UID(uid)); err != nil && ctx.Err() == nil {
					logger.Error(err, "Report allocated resources' health", "podUID", uid, "node", n.opts.Name)
				}
			}
		}
	}
}

// writeHealth rewrites the allocatedResourcesStatus of a running pod of the
// node; pods it does not run (yet) get theirs when they start.
func (w *podWorker) writeHealth(ctx context.Context, uid types.UID) error {
	w.mu.Lock()
	e := w.pods[uid]
	var pod *corev1.Pod
	if e != nil && e.prepared && !e.gone {
		pod = e.pod
	}
	w.mu.Unlock()
	if pod == nil {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := w.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != uid || cur.Status.Phase != corev1.PodRunning {
			return err
		}
		before := cur.Status.DeepCopy()
		w.resourceHealth(ctx, cur)
		if apiequality.Semantic.DeepEqual(before, &cur.Status) {
			return nil
		}
		_, err = w.client.CoreV1().Pods(cur.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// resourceHealth fills the allocatedResourcesStatus of pod's container
// statuses from what the DRA manager knows of its devices' health, as the
// kubelet does on every status sync.
func (w *podWorker) resourceHealth(ctx context.Context, pod *corev1.Pod) {
	if w.mgr == nil {
		return
	}
	w.mgr.UpdateAllocatedResourcesStatus(klog.FromContext(ctx), pod, &pod.Status)
}
