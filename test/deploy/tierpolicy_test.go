package deploy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

var tierPolicyResource = schema.GroupVersionResource{Group: v1alpha1.GroupName, Version: v1alpha1.Version, Resource: "tierpolicies"}

// TestTierPolicyAdmission installs the chart with its defaults (which
// include a TierPolicy) and proves the apiserver refuses a TierPolicy that
// Validate would refuse, naming the field, and that the tenancy admission
// policies fail closed: with the TierPolicy gone, a tenant's claim is
// refused instead of admitted unchecked, and admitted again once it is back.
func TestTierPolicyAdmission(t *testing.T) {
	s := installChart(t, nil)
	policies := s.dyn.Resource(tierPolicyResource)
	_, err := policies.Get(s.ctx, "default", metav1.GetOptions{})
	require.NoError(t, err, "the chart installs a TierPolicy by default")

	t.Run("invalid policies are refused", func(t *testing.T) { testInvalidPolicies(t, s) })
	t.Run("admission fails closed without a policy", func(t *testing.T) { testFailClosed(t, s, newApplier(t, s.cfg)) })
}

func testInvalidPolicies(t *testing.T, s *suite) {
	tests := map[string]struct {
		policy *v1alpha1.TierPolicy
		// wantField is the path the apiserver names; wantMsg its message.
		wantField, wantMsg string
		// goAgrees: Validate (the controller's Ready condition) refuses it too.
		goAgrees bool
	}{
		"a tenant allowed an undefined tier": {
			policy:    withTenant(tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Obj(), "team", "fast", "slow"),
			wantField: "spec.tenants", wantMsg: "every tenant's allowedTiers must name tiers defined in spec.tiers", goAgrees: true},
		"the open tenant allowed an undefined tier": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Obj()
				p.Spec.OpenTenant = &v1alpha1.OpenTenant{AllowedTiers: []string{"slow"}}
				return p
			}(),
			wantField: "spec.openTenant.allowedTiers", wantMsg: "allowedTiers must name tiers defined in spec.tiers", goAgrees: true},
		"a tier defined twice": {
			policy:    tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Tier("fast", v1alpha1.PartitioningMIG).Obj(),
			wantField: "spec.tiers[1]", wantMsg: "Duplicate value", goAgrees: true},
		"a reserved tier name": {
			policy:    tierratest.MakePolicy().Tier("mig", v1alpha1.PartitioningMIG).Obj(),
			wantField: "spec.tiers[0].name", wantMsg: "tier name mig is reserved: mig.gpu.tierra.dev is a plain class of the driver", goAgrees: true},
		"a Shared tier that is exclusive": {
			policy:    tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingExclusive).Obj(),
			wantField: "spec.tiers[0].sharing.strategy", wantMsg: `Shared partitioning needs strategy "MPS" or "TimeSlicing", not Exclusive`, goAgrees: true},
		"time-slicing settings on an MPS tier": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingMPS).Obj()
				p.Spec.Tiers[0].Sharing.TimeSlicing = &v1alpha1.TimeSlicingConfig{Interval: v1alpha1.TimeSliceShort}
				return p
			}(),
			wantField: "spec.tiers[0].sharing.timeSlicing", wantMsg: `only allowed when strategy is "TimeSlicing"`, goAgrees: true},
		"a price out of range": {
			policy:    tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).DefaultPrice("2000000000").Obj(),
			wantField: "spec.priceBook.default", wantMsg: "out of range (at most 1000000000 dollars)", goAgrees: true},
		"a price that does not parse": {
			policy:    tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Price(tierratest.ProductH200, "3.5.0").Obj(),
			wantField: "spec.priceBook.products[0].perGPUHour", wantMsg: "should match", goAgrees: true},
		"two tiers, one extended resource": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Tier("slow", v1alpha1.PartitioningWhole).Obj()
				p.Spec.Tiers[0].ExtendedResourceName = "tierra.dev/gpu"
				p.Spec.Tiers[1].ExtendedResourceName = "tierra.dev/gpu"
				return p
			}(),
			wantField: "spec.tiers", wantMsg: "two tiers name the same extendedResourceName", goAgrees: true},
		"nvidia.com/gpu mapped to one tier and named by another": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Tier("slow", v1alpha1.PartitioningWhole).Obj()
				p.Spec.NVIDIAGPUTier = "fast"
				p.Spec.Tiers[1].ExtendedResourceName = "nvidia.com/gpu"
				return p
			}(),
			wantField: "spec.tiers", wantMsg: "another tier names nvidia.com/gpu, which nvidiaGPUTier maps to tier fast", goAgrees: true},
		"nvidia.com/gpu mapped to an undefined tier": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Obj()
				p.Spec.NVIDIAGPUTier = "slow"
				return p
			}(),
			wantField: "spec.nvidiaGPUTier", wantMsg: "nvidiaGPUTier must name a tier defined in spec.tiers", goAgrees: true},
		"an extended resource in the kubernetes.io domain": {
			policy: func() *v1alpha1.TierPolicy {
				p := tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).Obj()
				p.Spec.Tiers[0].ExtendedResourceName = "kubernetes.io/gpu"
				return p
			}(),
			wantField: "spec.tiers[0].extendedResourceName", wantMsg: `must not have "kubernetes.io/" domain`, goAgrees: true},
		"negative minimum memory": {
			policy:    tierratest.MakePolicy().Tier("fast", v1alpha1.PartitioningWhole).MinMemory("-80Gi").Obj(),
			wantField: "spec.tiers[0].gpus.minMemory", wantMsg: "must not be negative", goAgrees: true},
	}
	policies := s.dyn.Resource(tierPolicyResource)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.policy.Name = "invalid"
			if tc.goAgrees {
				errs := tc.policy.Validate()
				require.NotEmpty(t, errs, "Validate refuses it too")
				assert.Contains(t, errs.ToAggregate().Error(), tc.wantField)
			}
			_, err := policies.Create(s.ctx, toUnstructured(t, tc.policy), metav1.CreateOptions{})
			require.Error(t, err, "the apiserver refuses it")
			assert.True(t, apierrors.IsInvalid(err), "refused by validation: %v", err)
			assert.Contains(t, err.Error(), tc.wantField)
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
	t.Run("the demo policy is valid", func(t *testing.T) {
		demo := decodeFile(t, filepath.Join(s.root, "demo/tierpolicy.yaml"))[0]
		demo.SetName("demo")
		_, err := policies.Create(s.ctx, demo, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.NoError(t, err)
	})
}

// testFailClosed deletes the chart's TierPolicy: a claim is refused until a
// policy is back.
func testFailClosed(t *testing.T, s *suite, a *applier) {
	const ns = "team-a"
	require.NoError(t, ensureNamespace(s.ctx, s.cs, ns, map[string]string{v1alpha1.TenantLabel: "team-a"}))
	claims := s.cs.ResourceV1().ResourceClaims(ns)
	claim := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			c := tierratest.MakeClaim(name, ns).Request("gpu", tiers.ClassName("standard")).Obj()
			c.UID = ""
			_, err := claims.Create(ctx, c, metav1.CreateOptions{})
			return err
		}
	}
	// The policies' informers see the chart's TierPolicy: claims pass.
	require.NoError(t, poll(s.ctx, claim("with-policy")), "a claim is admitted while the TierPolicy exists")

	policies := s.dyn.Resource(tierPolicyResource)
	saved, err := policies.Get(s.ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, policies.Delete(s.ctx, "default", metav1.DeleteOptions{}))
	waitRefused(t, s.ctx, claim("probe-no-policy"))
	err = claim("without-policy")(s.ctx)
	require.Error(t, err, "without a TierPolicy a tenant's claim is refused, not admitted unchecked")
	assert.Contains(t, err.Error(), "no params found for policy binding with `Deny` parameterNotFoundAction")

	saved.SetResourceVersion("")
	saved.SetUID("")
	require.NoError(t, a.apply(s.ctx, cleanForApply(saved)))
	require.NoError(t, poll(s.ctx, claim("policy-back")), "claims are admitted again once the TierPolicy is back")
}

// poll retries create until it succeeds (the apiserver's policy informers
// catch up with a TierPolicy change within a moment).
func poll(ctx context.Context, create func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = create(ctx)
		return last == nil, nil
	})
	if err != nil {
		return last
	}
	return nil
}

func withTenant(p *v1alpha1.TierPolicy, name string, allowed ...string) *v1alpha1.TierPolicy {
	p.Spec.Tenants = append(p.Spec.Tenants, v1alpha1.Tenant{Name: name,
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.TenantLabel: name}}, AllowedTiers: allowed})
	return p
}

func toUnstructured(t *testing.T, p *v1alpha1.TierPolicy) *unstructured.Unstructured {
	t.Helper()
	p = p.DeepCopy()
	p.APIVersion, p.Kind = v1alpha1.SchemeGroupVersion.String(), v1alpha1.TierPolicyKind
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

// cleanForApply drops the fields server-side apply refuses in a request.
func cleanForApply(u *unstructured.Unstructured) *unstructured.Unstructured {
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "generation")
	unstructured.RemoveNestedField(u.Object, "status")
	return u
}
