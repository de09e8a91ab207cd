package cluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/test/cluster"
)

// makeReadyNode creates a Node and does the kubelet's part: report it Ready
// with room for pods. The node lifecycle controller would then lift the
// not-ready taint; the test removes it itself rather than wait.
func makeReadyNode(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	require.NoError(t, err)
	capacity := corev1.ResourceList{
		corev1.ResourcePods:   apiresource.MustParse("110"),
		corev1.ResourceCPU:    apiresource.MustParse("8"),
		corev1.ResourceMemory: apiresource.MustParse("32Gi"),
	}
	status := corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	// A patch, not an update: the controller manager writes the new node
	// too, and an update would race it for the resourceVersion.
	patch, err := json.Marshal(map[string]any{"status": status})
	require.NoError(t, err)
	_, err = cs.CoreV1().Nodes().Patch(ctx, nodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil || len(node.Spec.Taints) == 0 {
			return err == nil, err
		}
		node.Spec.Taints = nil
		_, err = cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			err = nil
		}
		return false, err
	})
	require.NoError(t, err, "node taints never cleared")
}

// createKwokNode creates a Node for kwok to run, and waits until kwok has
// reported it Ready and the node lifecycle controller has lifted its taints.
func createKwokNode(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        nodeName,
		Annotations: map[string]string{cluster.KwokNodeAnnotation: "fake"},
	}}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	require.NoError(t, err)
	t0 := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && isReady(node) && len(node.Spec.Taints) == 0, err
	})
	require.NoError(t, err, "kwok node never became Ready and untainted")
	t.Logf("kwok node schedulable %s after creation", time.Since(t0).Round(time.Millisecond))
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
