package deploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const otherDriver = "other.example.com"

// allocatedOn creates a claim with one device of gpu.tierra.dev and one of
// another driver, allocated on node, as the scheduler leaves it.
func (s *suite) allocatedOn(t *testing.T, ns, name, node string) *resourceapi.ResourceClaim {
	t.Helper()
	claim := tierratest.MakeClaim(name, ns).Request("gpu", tiers.ClassGPU).Request("other", "other.example.com").Obj()
	claim.UID = ""
	claim, err := s.cs.ResourceV1().ResourceClaims(ns).Create(s.ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)
	claim.Status.Allocation = &resourceapi.AllocationResult{
		Devices: resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{
			{Request: "gpu", Driver: v1alpha1.DriverName, Pool: node, Device: "gpu-0"},
			{Request: "other", Driver: otherDriver, Pool: node, Device: "dev-0"},
		}},
		NodeSelector: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}},
	}
	claim, err = s.cs.ResourceV1().ResourceClaims(ns).UpdateStatus(s.ctx, claim, metav1.UpdateOptions{})
	require.NoError(t, err)
	return claim
}

func deviceStatus(driver, node, device string) resourceapi.AllocatedDeviceStatus {
	return resourceapi.AllocatedDeviceStatus{Driver: driver, Pool: node, Device: device,
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Prepared", LastTransitionTime: metav1.Now()}}}
}

// testClaimStatus: the plugin's token writes device status in a claim only
// for its driver and only for claims allocated on its node
// (resourceclaims/driver, "associated-node:" verbs), and never the
// allocation.
func (s *suite) testClaimStatus(t *testing.T) {
	const ns = "claim-status"
	require.NoError(t, ensureNamespace(s.ctx, s.cs, ns, nil))
	plugin := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-status-on-a", nodeA))
	claims := plugin.cs.ResourceV1().ResourceClaims(ns)

	onA := s.allocatedOn(t, ns, "on-a", nodeA)
	onA.Status.Devices = []resourceapi.AllocatedDeviceStatus{deviceStatus(v1alpha1.DriverName, nodeA, "gpu-0")}
	onA, err := claims.UpdateStatus(s.ctx, onA, metav1.UpdateOptions{})
	require.NoError(t, err, "the plugin on node A writes gpu.tierra.dev's status in a claim on node A")
	require.Len(t, onA.Status.Devices, 1)

	onA.Status.Devices = append(onA.Status.Devices, deviceStatus(otherDriver, nodeA, "dev-0"))
	_, err = claims.UpdateStatus(s.ctx, onA, metav1.UpdateOptions{})
	require.Error(t, err, "another driver's status must be refused")
	assert.Contains(t, err.Error(), `resourceclaims/driver`)
	assert.Contains(t, err.Error(), otherDriver)

	onB := s.allocatedOn(t, ns, "on-b", nodeB)
	onB.Status.Devices = []resourceapi.AllocatedDeviceStatus{deviceStatus(v1alpha1.DriverName, nodeB, "gpu-0")}
	_, err = claims.UpdateStatus(s.ctx, onB, metav1.UpdateOptions{})
	require.Error(t, err, "the plugin on node A must not write status in a claim allocated on node B")
	assert.Contains(t, err.Error(), `resourceclaims/driver`)

	fresh, err := s.cs.ResourceV1().ResourceClaims(ns).Get(s.ctx, "on-a", metav1.GetOptions{})
	require.NoError(t, err)
	fresh.Status.Allocation, fresh.Status.Devices = nil, nil
	_, err = claims.UpdateStatus(s.ctx, fresh, metav1.UpdateOptions{})
	require.Error(t, err, "the allocation is the scheduler's, not the plugin's")
	assert.Contains(t, err.Error(), "resourceclaims/binding")

	_, err = claims.Update(s.ctx, fresh, metav1.UpdateOptions{})
	assert.True(t, forbidden(err), "the plugin cannot write a claim's spec: %v", err)
}

// testPluginLeastPrivilege: the plugin's identity, even bound to its node,
// is refused what the plugin never calls.
func (s *suite) testPluginLeastPrivilege(t *testing.T) {
	cs := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-priv-on-a", nodeA)).cs
	refused := map[string]apiCall{
		"list Secrets": func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		},
		"create DeviceClasses": func(ctx context.Context) error {
			_, err := cs.ResourceV1().DeviceClasses().Create(ctx, &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "x." + v1alpha1.DriverName}}, metav1.CreateOptions{})
			return err
		},
		"list ResourceClaims": func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims("").List(ctx, metav1.ListOptions{})
			return err
		},
		"label its Node": func(ctx context.Context) error {
			_, err := cs.CoreV1().Nodes().Patch(ctx, nodeA, types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		},
		"delete Pods": func(ctx context.Context) error {
			return cs.CoreV1().Pods(namespace).Delete(ctx, "plugin-on-a", metav1.DeleteOptions{})
		},
		"create events outside default": func(ctx context.Context) error {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe."}, Reason: "Probe", Type: corev1.EventTypeNormal,
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: "plugin-on-a"}}
			_, err := cs.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
			return err
		},
	}
	for name, call := range refused {
		t.Run("may not "+name, func(t *testing.T) {
			err := call(s.ctx)
			assert.True(t, forbidden(err), "the plugin must not %s; got %v", name, err)
		})
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: nodeA + "."}, Reason: "Probe", Type: corev1.EventTypeNormal,
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: nodeA}}
	_, err := cs.CoreV1().Events(metav1.NamespaceDefault).Create(s.ctx, ev, metav1.CreateOptions{})
	require.NoError(t, err, "the plugin records events about its Node in default")
}
