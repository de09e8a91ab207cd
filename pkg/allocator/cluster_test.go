package allocator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
)

// twoGPUNode is a cluster of one node, node-a, with devices gpu-0 and gpu-1
// of class gpu.
func twoGPUNode() *Cluster {
	slice := &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Spec: resourceapi.ResourceSliceSpec{
			Driver: "gpu.example.com", NodeName: ptr.To("node-a"),
			Pool:    resourceapi.ResourcePool{Name: "node-a", ResourceSliceCount: 1},
			Devices: []resourceapi.Device{{Name: "gpu-0"}, {Name: "gpu-1"}},
		},
	}
	return NewCluster([]*resourceapi.ResourceSlice{slice}, &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}})
}

func TestClusterRemembersWhatItAllocated(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	claim := func(name string) *resourceapi.ResourceClaim {
		return &resourceapi.ResourceClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
			Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
				Name: "gpu", Exactly: &resourceapi.ExactDeviceRequest{
					DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 1,
				},
			}}}},
		}
	}
	c := twoGPUNode()
	var got []string
	for _, name := range []string{"a", "b", "c"} {
		devices, err := c.Allocate(ctx, "node-a", claim(name))
		require.NoError(t, err)
		got = append(got, devices...)
	}
	assert.Equal(t, []string{"gpu-0", "gpu-1"}, got, "each device once, then the third claim is refused")
	assert.Len(t, c.Allocated, 2)
	assert.Equal(t, 2, c.State().AllocatedDevices.Len())
}

// An admin-access (monitoring) allocation does not hold its device, as in
// kube-scheduler: claims after it still get every device.
func TestClusterAdminAccessHoldsNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	claim := func(name string, admin bool) *resourceapi.ResourceClaim {
		return &resourceapi.ResourceClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
			Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
				Name: "gpu", Exactly: &resourceapi.ExactDeviceRequest{
					DeviceClassName: "gpu", AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 1,
					AdminAccess: ptr.To(admin),
				},
			}}}},
		}
	}
	c := twoGPUNode()
	monitor, err := c.Allocate(ctx, "node-a", claim("monitor", true))
	require.NoError(t, err)
	require.Equal(t, []string{"gpu-0"}, monitor)
	var got []string
	for _, name := range []string{"a", "b"} {
		devices, err := c.Allocate(ctx, "node-a", claim(name, false))
		require.NoError(t, err)
		got = append(got, devices...)
	}
	assert.Equal(t, []string{"gpu-0", "gpu-1"}, got, "the monitored GPU is still free for a workload")
	assert.Equal(t, 2, c.State().AllocatedDevices.Len())
}
