package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestDesiredClasses(t *testing.T) {
	tests := map[string]struct {
		policy      *v1alpha1.TierPolicy
		wantClasses []string
		wantErrPath string
	}{
		"example policy": {
			policy: v1alpha1.DefaultTierPolicy(),
			wantClasses: []string{"training.gpu.tierra.dev", "inference.gpu.tierra.dev", "dev.gpu.tierra.dev",
				tiers.ClassGPU, tiers.ClassMIG},
		},
		"one tier": {
			policy:      tierratest.MakePolicy().Tier("gold", v1alpha1.PartitioningWhole).Obj(),
			wantClasses: []string{"gold.gpu.tierra.dev", tiers.ClassGPU, tiers.ClassMIG},
		},
		"tenant allows an undefined tier": {
			policy: func() *v1alpha1.TierPolicy {
				p := v1alpha1.DefaultTierPolicy()
				p.Spec.Tenants[1].AllowedTiers = append(p.Spec.Tenants[1].AllowedTiers, "gold")
				return p
			}(),
			wantErrPath: "spec.tenants[1].allowedTiers[2]",
		},
		"unknown partitioning": {
			policy:      tierratest.MakePolicy().Tier("gold", "Halves").Obj(),
			wantErrPath: "spec.tiers[0].partitioning",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			classes, errs, err := DesiredClasses(tc.policy)
			require.NoError(t, err)
			if tc.wantErrPath != "" {
				require.NotEmpty(t, errs)
				assert.Equal(t, tc.wantErrPath, errs[0].Field)
				assert.Nil(t, classes)
				assert.Contains(t, InvalidMessage(errs), tc.wantErrPath)
				return
			}
			require.Empty(t, errs)
			var names []string
			for _, c := range classes {
				names = append(names, c.Name)
				assert.Equal(t, tiers.ManagedBy, c.Labels[tiers.LabelManagedBy], c.Name)
			}
			assert.Equal(t, tc.wantClasses, names)
		})
	}
}

func class(name string, managed bool) *resourceapi.DeviceClass {
	c := &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if managed {
		c.Labels = map[string]string{tiers.LabelManagedBy: tiers.ManagedBy}
	}
	return c
}

func TestPruneSet(t *testing.T) {
	tests := map[string]struct {
		existing, desired []*resourceapi.DeviceClass
		want              []string
	}{
		"nothing managed": {
			existing: []*resourceapi.DeviceClass{class("other", false)},
		},
		"dropped tiers, sorted": {
			existing: []*resourceapi.DeviceClass{class("dev", true), class("a", true), class("training", true)},
			desired:  []*resourceapi.DeviceClass{class("training", true)},
			want:     []string{"a", "dev"},
		},
		"unmanaged class of the same name is never pruned": {
			existing: []*resourceapi.DeviceClass{class("dev", false)},
			desired:  nil,
		},
		"all desired": {
			existing: []*resourceapi.DeviceClass{class("a", true)},
			desired:  []*resourceapi.DeviceClass{class("a", true), class("b", true)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, PruneSet(tc.existing, tc.desired))
		})
	}
}

func device(name, tier string) resourceapi.Device {
	d := resourceapi.Device{Name: name, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}}
	if tier != "" {
		d.Attributes[tslices.AttrTier] = resourceapi.DeviceAttribute{StringValue: ptr.To(tier)}
	}
	return d
}

func slice(driver, pool string, gen int64, devices ...resourceapi.Device) *resourceapi.ResourceSlice {
	return &resourceapi.ResourceSlice{Spec: resourceapi.ResourceSliceSpec{
		Driver: driver, Pool: resourceapi.ResourcePool{Name: pool, Generation: gen, ResourceSliceCount: 1},
		Devices: devices,
	}}
}

func allocated(driver, pool string, devices ...string) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{}
	c.Status.Allocation = &resourceapi.AllocationResult{}
	for _, d := range devices {
		c.Status.Allocation.Devices.Results = append(c.Status.Allocation.Devices.Results,
			resourceapi.DeviceRequestAllocationResult{Request: "gpu", Driver: driver, Pool: pool, Device: d})
	}
	return c
}

func TestReadyStatus(t *testing.T) {
	policy := tierratest.MakePolicy().Tier("training", v1alpha1.PartitioningWhole).
		Tier("dev", v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingTimeSlicing).Obj()
	policy.Generation = 4
	rs := []*resourceapi.ResourceSlice{
		slice(driverName, "n1", 2, device("gpu-0", "training"), device("gpu-1", "training"),
			device("gpu-2", "training"), device("gpu-3", "training"), device("x", "")),
		slice(driverName, "n1", 1, device("stale", "training")), // an older generation
		slice(driverName, "n2", 1, device("gpu-0", "dev"), device("gpu-1", "dev")),
		slice("other.example.com", "n3", 1, device("gpu-0", "training")),
	}
	claims := []*resourceapi.ResourceClaim{
		allocated(driverName, "n1", "gpu-0"),
		allocated(driverName, "n1", "gpu-1", "gpu-2", "stale"),
		allocated("other.example.com", "n3", "gpu-0"),
		{}, // pending
	}
	now := metav1.NewTime(time.Unix(1000, 0))
	st := ReadyStatus(policy, rs, claims, now)
	assert.Equal(t, int64(4), st.ObservedGeneration)
	assert.Equal(t, int32(2), st.TierCount)
	assert.Equal(t, []v1alpha1.TierStatus{
		{Name: "training", DevicesPublished: 4, DevicesAllocated: 3, GPUs: 4, AllocatedMilliGPUs: 3000, YieldPercent: 75},
		{Name: "dev", DevicesPublished: 2, GPUs: 2},
	}, st.Tiers)
	cond := apimeta.FindStatusCondition(st.Conditions, ConditionReady)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)
	assert.Equal(t, now, cond.LastTransitionTime)

	// Invalid next: Ready flips, the counts of the classes still in place stay.
	policy.Status, policy.Generation = st, 5
	later := metav1.NewTime(now.Add(time.Minute))
	bad := NotReadyStatus(policy, ReasonInvalidPolicy, "spec.tiers[0]: bad", later)
	assert.Equal(t, st.Tiers, bad.Tiers)
	assert.Equal(t, int64(5), bad.ObservedGeneration)
	cond = apimeta.FindStatusCondition(bad.Conditions, ConditionReady)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, ReasonInvalidPolicy, cond.Reason)
	assert.Equal(t, later, cond.LastTransitionTime)
	assert.Equal(t, now, apimeta.FindStatusCondition(st.Conditions, ConditionReady).LastTransitionTime,
		"the ready status must not be changed in place")
}
