package plugin

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// ReasonCheckpointQuarantined is the reason of the Node event that says a
// corrupt checkpoint record was moved aside at start.
const ReasonCheckpointQuarantined = "CheckpointQuarantined"

// eventNamespace holds events about cluster-scoped objects such as Nodes.
const eventNamespace = metav1.NamespaceDefault

// nodeEvent records an event on the Node. It is best effort: failing to
// record it is logged and never keeps the plugin from serving.
func nodeEvent(ctx context.Context, client kubernetes.Interface, node *corev1.Node, eventType, reason, message string) {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: node.Name + ".", Namespace: eventNamespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name, UID: node.UID,
			ResourceVersion: node.ResourceVersion},
		Reason: reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: "tierra-kubelet-plugin", Host: node.Name},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: v1alpha1.DriverName + "/kubelet-plugin", ReportingInstance: node.Name,
	}
	if _, err := client.CoreV1().Events(eventNamespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		klog.FromContext(ctx).Error(err, "Could not record an event on the node", "reason", reason)
	}
}
