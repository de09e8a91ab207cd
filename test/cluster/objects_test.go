package cluster_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// createDRAObjects publishes what a DRA driver and a user would: a
// DeviceClass, a ResourceSlice with two devices on the node, and a
// ResourceClaimTemplate asking for one.
func createDRAObjects(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	class := &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: driver},
		Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{
			CEL: &resourcev1.CELDeviceSelector{Expression: `device.driver == "` + driver + `"`},
		}}},
	}
	_, err := cs.ResourceV1().DeviceClasses().Create(ctx, class, metav1.CreateOptions{})
	require.NoError(t, err)

	slice := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName + "-" + driver},
		Spec: resourcev1.ResourceSliceSpec{
			Driver:   driver,
			NodeName: ptr.To(nodeName),
			Pool:     resourcev1.ResourcePool{Name: nodeName, Generation: 1, ResourceSliceCount: 1},
			Devices:  []resourcev1.Device{{Name: "gpu-0"}, {Name: "gpu-1"}},
		},
	}
	_, err = cs.ResourceV1().ResourceSlices().Create(ctx, slice, metav1.CreateOptions{})
	require.NoError(t, err)

	tmpl := &resourcev1.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "one-gpu", Namespace: "default"},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{
			Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
				Name:    "gpu",
				Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: driver},
			}}},
		}},
	}
	_, err = cs.ResourceV1().ResourceClaimTemplates("default").Create(ctx, tmpl, metav1.CreateOptions{})
	require.NoError(t, err)
}

func makePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-pod", Namespace: "default"},
		Spec: corev1.PodSpec{
			ResourceClaims: []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("one-gpu")}},
			Containers: []corev1.Container{{
				Name:      "main",
				Image:     "registry.invalid/pause", // never pulled: there is no kubelet
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpu"}}},
			}},
		},
	}
}

// assertAllocated checks that the claim generated for the pod holds one of
// the slice's devices and is reserved for the pod.
func assertAllocated(ctx context.Context, t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	require.Len(t, pod.Status.ResourceClaimStatuses, 1)
	name := pod.Status.ResourceClaimStatuses[0].ResourceClaimName
	require.NotNil(t, name, "pod has no generated claim")
	claim, err := cs.ResourceV1().ResourceClaims("default").Get(ctx, *name, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, claim.Status.Allocation, "claim %s not allocated", *name)
	results := claim.Status.Allocation.Devices.Results
	require.Len(t, results, 1)
	require.Equal(t, driver, results[0].Driver)
	require.Equal(t, nodeName, results[0].Pool)
	require.Contains(t, []string{"gpu-0", "gpu-1"}, results[0].Device)
	require.Len(t, claim.Status.ReservedFor, 1)
	require.Equal(t, pod.UID, claim.Status.ReservedFor[0].UID)
}
