package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// An admin who reprices a product in the TierPolicy sees every node's
// plugin republish its devices with the new cost, without a restart.
func TestPolicyChangeRepublishesSlices(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rest, err := env.cluster.RESTConfig()
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rest)
	require.NoError(t, err)
	policies := dyn.Resource(v1alpha1.SchemeGroupVersion.WithResource("tierpolicies"))
	setH200Price := func(ctx context.Context, price string) {
		t.Helper()
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"priceBook": map[string]any{"products": []map[string]string{
			{"product": "NVIDIA H200 141GB HBM3e", "perGPUHour": price},
			{"product": "NVIDIA L4", "perGPUHour": "0.80"},
		}}}})
		require.NoError(t, err)
		_, err = policies.Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	cost := func(ctx context.Context) int64 {
		d := publishedDevice(ctx, t, "dgx-h200-train", "gpu-0")
		v, _ := slices.IntAttribute(d, slices.AttrCostPerHour)
		return v
	}
	require.Equal(t, int64(3_500_000), cost(ctx), "demo/tierpolicy.yaml prices an H200 at $3.50")
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		setH200Price(ctx, "3.50")
		poll(ctx, t, "price never restored", func(ctx context.Context) (bool, error) { return cost(ctx) == 3_500_000, nil })
	})
	setH200Price(ctx, "4.20")
	poll(ctx, t, "slices never republished with the new price", func(ctx context.Context) (bool, error) {
		return cost(ctx) == 4_200_000, nil
	})
}

// Labelling a node as spot capacity makes its plugin republish its devices
// at the policy's spot discount (60% in demo/tierpolicy.yaml).
func TestNodeLabelChangeRepublishesSlices(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const node = "dgx-h200-train"
	label := func(ctx context.Context, value any) {
		t.Helper()
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{v1alpha1.CapacityTypeLabel: value}}})
		require.NoError(t, err)
		_, err = env.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	cost := func(ctx context.Context) int64 {
		v, _ := slices.IntAttribute(publishedDevice(ctx, t, node, "gpu-0"), slices.AttrCostPerHour)
		return v
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		label(ctx, nil)
		poll(ctx, t, "price never restored", func(ctx context.Context) (bool, error) { return cost(ctx) == 3_500_000, nil })
	})
	label(ctx, "spot")
	poll(ctx, t, "slices never republished at the spot price", func(ctx context.Context) (bool, error) {
		return cost(ctx) == 1_400_000, nil
	})
}
