package controller

import (
	"fmt"
	"slices"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Condition type and reasons the controller writes on a TierPolicy.
const (
	ConditionReady       = "Ready"
	ReasonRendered       = "Rendered"
	ReasonInvalidPolicy  = "InvalidPolicy"
	ReasonApplyFailed    = "ApplyFailed"
	driverName           = v1alpha1.DriverName
	maxConditionMsgBytes = 32 * 1024
)

// DesiredClasses renders the classes a valid policy asks for. A policy that
// does not validate renders nothing: the caller keeps the last good classes.
func DesiredClasses(policy *v1alpha1.TierPolicy) ([]*resourceapi.DeviceClass, field.ErrorList, error) {
	if errs := policy.Validate(); len(errs) > 0 {
		return nil, errs, nil
	}
	classes, err := tiers.Render(policy)
	if err != nil {
		return nil, nil, fmt.Errorf("render classes of TierPolicy %s: %w", policy.Name, err)
	}
	return classes, nil, nil
}

// PruneSet returns, sorted, the names of the classes this controller
// manages (by label) that desired no longer contains.
func PruneSet(existing, desired []*resourceapi.DeviceClass) []string {
	keep := make(map[string]bool, len(desired))
	for _, c := range desired {
		keep[c.Name] = true
	}
	var out []string
	for _, c := range existing {
		if c.Labels[tiers.LabelManagedBy] == tiers.ManagedBy && !keep[c.Name] {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return out
}

// ReadyStatus is the status of a policy whose classes are applied: one
// entry per tier in policy order, with published and allocated devices
// and GPU capacity.
func ReadyStatus(policy *v1alpha1.TierPolicy, rs []*resourceapi.ResourceSlice, claims []*resourceapi.ResourceClaim, now metav1.Time) v1alpha1.TierPolicyStatus {
	usage := TierUsages(rs, claims)
	st := v1alpha1.TierPolicyStatus{
		ObservedGeneration: policy.Generation,
		TierCount:          int32(len(policy.Spec.Tiers)),
		Conditions:         slices.Clone(policy.Status.Conditions),
	}
	for _, t := range policy.Spec.Tiers {
		ts := v1alpha1.TierStatus{Name: t.Name}
		if u := usage[t.Name]; u != nil {
			ts.DevicesPublished, ts.DevicesAllocated = u.DevicesPublished, u.DevicesAllocated
			ts.GPUs, ts.AllocatedMilliGPUs, ts.YieldPercent = u.GPUs, u.AllocatedMilliGPUs, u.YieldPercent()
		}
		st.Tiers = append(st.Tiers, ts)
	}
	setCondition(&st, metav1.ConditionTrue, ReasonRendered,
		fmt.Sprintf("%d tier classes and the plain classes applied", len(policy.Spec.Tiers)), policy.Generation, now)
	return st
}

// NotReadyStatus keeps the previous tier counts (the classes they describe
// are still in place) and sets Ready=False with reason and message.
func NotReadyStatus(policy *v1alpha1.TierPolicy, reason, message string, now metav1.Time) v1alpha1.TierPolicyStatus {
	st := *policy.Status.DeepCopy()
	st.ObservedGeneration = policy.Generation
	setCondition(&st, metav1.ConditionFalse, reason, message, policy.Generation, now)
	return st
}

// InvalidMessage lists the field errors, one per line, each naming its path.
func InvalidMessage(errs field.ErrorList) string {
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		lines = append(lines, e.Error())
	}
	msg := "invalid TierPolicy, last good classes kept: " + strings.Join(lines, "; ")
	if len(msg) > maxConditionMsgBytes {
		msg = msg[:maxConditionMsgBytes-3] + "..."
	}
	return msg
}

func setCondition(st *v1alpha1.TierPolicyStatus, status metav1.ConditionStatus, reason, msg string, gen int64, now metav1.Time) {
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: now,
	})
}
