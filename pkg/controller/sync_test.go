package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// TestSync runs one Sync against fake clients: classes applied and pruned
// for a valid policy, untouched for an invalid one, status written.
func TestSync(t *testing.T) {
	tests := map[string]struct {
		edit        func(*v1alpha1.TierPolicy)
		wantClasses []string
		wantReady   metav1.ConditionStatus
		wantReason  string
	}{
		"valid policy: classes applied, stale managed class pruned": {
			wantClasses: []string{"dev.gpu.tierra.dev", "gpu.tierra.dev", "inference.gpu.tierra.dev",
				"mig.gpu.tierra.dev", "other", "training.gpu.tierra.dev"},
			wantReady:  metav1.ConditionTrue,
			wantReason: ReasonRendered,
		},
		"invalid policy: classes untouched": {
			edit: func(p *v1alpha1.TierPolicy) {
				p.Spec.Tenants[0].AllowedTiers = append(p.Spec.Tenants[0].AllowedTiers, "gold")
			},
			wantClasses: []string{"other", "stale.gpu.tierra.dev"},
			wantReady:   metav1.ConditionFalse,
			wantReason:  ReasonInvalidPolicy,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			policy := v1alpha1.DefaultTierPolicy()
			policy.Generation = 3
			if tc.edit != nil {
				tc.edit(policy)
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(policy)
			require.NoError(t, err)
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{v1alpha1.TierPolicyResource: "TierPolicyList"}, &unstructured.Unstructured{Object: u})
			kube := fake.NewClientset(managedClass("stale.gpu.tierra.dev"),
				&resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}})

			c := New(Config{}, kube, dyn)
			c.now = func() time.Time { return time.Unix(1000, 0) }
			require.NoError(t, c.startInformers(ctx))
			require.NoError(t, c.Sync(ctx))

			list, err := kube.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			var names []string
			for _, cl := range list.Items {
				names = append(names, cl.Name)
			}
			assert.ElementsMatch(t, tc.wantClasses, names)

			got, err := dyn.Resource(v1alpha1.TierPolicyResource).Get(ctx, policy.Name, metav1.GetOptions{})
			require.NoError(t, err)
			var stored v1alpha1.TierPolicy
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, &stored))
			cond := apimeta.FindStatusCondition(stored.Status.Conditions, ConditionReady)
			require.NotNil(t, cond, "no Ready condition written")
			assert.Equal(t, tc.wantReady, cond.Status)
			assert.Equal(t, tc.wantReason, cond.Reason)
			assert.Equal(t, int64(3), stored.Status.ObservedGeneration)
		})
	}
}

func managedClass(name string) *resourceapi.DeviceClass {
	return &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{tiers.LabelManagedBy: tiers.ManagedBy},
	}}
}

// A deleted TierPolicy leaves its classes: pending claims that name them
// must still allocate.
func TestSyncWithoutPolicyKeepsClasses(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.TierPolicyResource: "TierPolicyList"})
	kube := fake.NewClientset(managedClass("training.gpu.tierra.dev"))
	c := New(Config{}, kube, dyn)
	require.NoError(t, c.startInformers(ctx))
	require.NoError(t, c.Sync(ctx))
	_, err := kube.ResourceV1().DeviceClasses().Get(ctx, "training.gpu.tierra.dev", metav1.GetOptions{})
	assert.NoError(t, err, "the class went with the policy")
}
