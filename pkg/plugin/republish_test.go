package plugin_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

var tierPolicies = v1alpha1.TierPolicyResource

// waitDevice waits until the published device of that name ("" for any)
// satisfies cond.
func (h *harness) waitDevice(t *testing.T, name string, cond func(resourceapi.Device) bool, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, s := range h.publishedSlices(t) {
			for _, d := range s.Spec.Devices {
				if (name == "" || d.Name == name) && cond(d) {
					return true
				}
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, msg)
}

func TestRepublishWhenNodeLabelsChange(t *testing.T) {
	h := startPlugin(t, v1alpha1.TierInference)
	exclusive := func(d resourceapi.Device) bool { return tslices.StringAttribute(d, tslices.AttrSharing) == "Exclusive" }
	h.waitDevice(t, "gpu-0", exclusive, "inference tier: gpu-0 is exclusive")

	node, err := h.client.CoreV1().Nodes().Get(h.ctx, nodeName, metav1.GetOptions{})
	require.NoError(t, err)
	node.Labels[v1alpha1.NodeTierLabel] = v1alpha1.TierDev
	_, err = h.client.CoreV1().Nodes().Update(h.ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)

	h.waitDevice(t, "", func(d resourceapi.Device) bool {
		return tslices.StringAttribute(d, tslices.AttrTier) == v1alpha1.TierDev && !exclusive(d)
	}, "dev tier after relabelling: shared devices")
}

func TestRepublishWhenTierPolicyChanges(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{tierPolicies: "TierPolicyList"}, v1alpha1.DefaultTierPolicy())
	h := startPlugin(t, v1alpha1.TierInference, func(h *harness) { h.dynamic = client })
	costIs := func(want int64) func(resourceapi.Device) bool {
		return func(d resourceapi.Device) bool {
			v, ok := tslices.IntAttribute(d, tslices.AttrCostPerHour)
			return ok && v == want
		}
	}
	h.waitDevice(t, "gpu-0", costIs(3_500_000), "H200 at the default price")

	policy := v1alpha1.DefaultTierPolicy()
	for i := range policy.Spec.PriceBook.Products {
		if policy.Spec.PriceBook.Products[i].Product == v1alpha1.ProductH200SXM {
			policy.Spec.PriceBook.Products[i].PerGPUHour = "4.25"
		}
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(policy)
	require.NoError(t, err)
	_, err = client.Resource(tierPolicies).Update(h.ctx, &unstructured.Unstructured{Object: content}, metav1.UpdateOptions{})
	require.NoError(t, err)

	h.waitDevice(t, "gpu-0", costIs(4_250_000), "H200 at the new price")
	// Prepare plans against the republished devices.
	claim := h.claim(t, tierratest.MakeClaim("c", "ns").UID("uid-c").Request("gpu", tiers.ClassGPU).Obj(), nil)
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	assert.Empty(t, resp.Claims["uid-c"].Error)
}

func TestQuarantinedCheckpointRecordIsANodeEvent(t *testing.T) {
	state := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(state, "checkpoint"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(state, "checkpoint", "uid-bad.json"), []byte("{not json"), 0o600))
	h := startPlugin(t, v1alpha1.TierInference, func(h *harness) { h.cfg.StateDir = state })

	events, err := h.client.CoreV1().Events(metav1.NamespaceDefault).List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, events.Items, 1)
	ev := events.Items[0]
	assert.Equal(t, plugin.ReasonCheckpointQuarantined, ev.Reason)
	assert.Equal(t, "Warning", ev.Type)
	assert.Equal(t, "Node", ev.InvolvedObject.Kind)
	assert.Equal(t, nodeName, ev.InvolvedObject.Name)
	assert.Contains(t, ev.Message, "uid-bad.json")
	// The plugin serves.
	claim := h.claim(t, tierratest.MakeClaim("c", "ns").UID("uid-c").Request("gpu", tiers.ClassGPU).Obj(), nil)
	resp, err := h.prepare(claim)
	require.NoError(t, err)
	assert.Empty(t, resp.Claims["uid-c"].Error)
}
