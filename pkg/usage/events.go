package usage

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// APIEvents is an EventSink that creates core/v1 Events on the pods, as
// the kubelet plugin on Node reports them.
type APIEvents struct {
	Client kubernetes.Interface
	Node   string
	// Component is the event source; "" is tierra-kubelet-plugin.
	Component string
}

var _ EventSink = APIEvents{}

// PodEvent implements EventSink. It is best effort: a failure is logged.
func (e APIEvents) PodEvent(ctx context.Context, c Claim, p Pod, warning bool, reason, message string) {
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	component := e.Component
	if component == "" {
		component = "tierra-kubelet-plugin"
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + ".", Namespace: c.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: c.Namespace, Name: p.Name,
			UID: types.UID(p.UID)},
		Reason: reason, Message: message, Type: typ,
		Source:         corev1.EventSource{Component: component, Host: e.Node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := e.Client.CoreV1().Events(c.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		klog.FromContext(ctx).Error(err, "Could not record an event on the pod", "pod", klog.KRef(c.Namespace, p.Name), "reason", reason)
	}
}
