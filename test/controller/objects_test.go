package controller_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// dropTier removes a tier and every tenant's permission for it, which
// keeps the policy valid.
func dropTier(name string) func(*v1alpha1.TierPolicySpec) {
	return func(s *v1alpha1.TierPolicySpec) {
		s.Tiers = slices.DeleteFunc(s.Tiers, func(t v1alpha1.Tier) bool { return t.Name == name })
		for i := range s.Tenants {
			s.Tenants[i].AllowedTiers = slices.DeleteFunc(s.Tenants[i].AllowedTiers, func(t string) bool { return t == name })
		}
	}
}

// publishNode creates a Node and the ResourceSlices pkg/slices builds for a
// DGX H200 under policy, as the kubelet plugin would; it returns the number
// of devices per tier the slices carry.
func publishNode(ctx context.Context, t *testing.T, cs kubernetes.Interface, policy *v1alpha1.TierPolicy) map[string]int32 {
	t.Helper()
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	require.NoError(t, err)
	dr, err := tslices.Build(tslices.Node{Name: nodeName, Machine: tierratest.DGXH200(false)}, policy)
	require.NoError(t, err)
	want := map[string]int32{}
	for _, s := range tslices.ResourceSlices(nodeName, dr) {
		for _, d := range s.Spec.Devices {
			if a, ok := d.Attributes[tslices.AttrTier]; ok {
				want[*a.StringValue]++
			}
		}
		_, err := cs.ResourceV1().ResourceSlices().Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	return want
}

// allocateClaim creates a claim for a training GPU and writes the
// allocation the scheduler would: gpu-0 of the node's pool.
func allocateClaim(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	claim := tierratest.MakeClaim("train", "default").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj()
	claim, err := cs.ResourceV1().ResourceClaims("default").Create(ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)
	claim.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
		Results: []resourceapi.DeviceRequestAllocationResult{{
			Request: "gpu", Driver: v1alpha1.DriverName, Pool: nodeName, Device: "gpu-0",
		}},
	}}
	_, err = cs.ResourceV1().ResourceClaims("default").UpdateStatus(ctx, claim, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// listManaged returns name → resourceVersion of the managed classes.
func listManaged(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	list, err := cs.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{LabelSelector: managedBy})
	require.NoError(t, err)
	out := map[string]string{}
	for _, c := range list.Items {
		out[c.Name] = c.ResourceVersion
	}
	return out
}

func joined(names []string) string { return strings.Join(names, ", ") }
