package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	resourceapi "k8s.io/api/resource/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Sync brings the classes and the status in line with the policy: a valid
// policy's classes are applied and stale ones pruned; an invalid one only
// gets Ready=False, its last good classes stay.
func (c *Controller) Sync(ctx context.Context) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "policy", c.cfg.PolicyName)
	ctx = klog.NewContext(ctx, logger)
	policy, err := c.policy()
	if apierrors.IsNotFound(err) {
		// Deleting the classes would strand every claim that names them;
		// recreating the policy re-renders and prunes.
		logger.Info("TierPolicy not found; keeping the classes it last rendered", "classes", tiers.LabelManagedBy+"="+tiers.ManagedBy)
		return nil
	}
	if err != nil {
		return err
	}
	now := metav1.NewTime(c.now())
	desired, invalid, err := DesiredClasses(policy)
	if err != nil {
		return c.writeStatus(ctx, policy, NotReadyStatus(policy, ReasonApplyFailed, err.Error(), now))
	}
	if len(invalid) > 0 {
		logger.Info("TierPolicy is invalid, keeping the last good classes", "errors", len(invalid))
		return c.writeStatus(ctx, policy, NotReadyStatus(policy, ReasonInvalidPolicy, InvalidMessage(invalid), now))
	}
	if err := c.applyClasses(ctx, desired); err != nil {
		return errors.Join(err, c.writeStatus(ctx, policy, NotReadyStatus(policy, ReasonApplyFailed, err.Error(), now)))
	}
	rs, err := c.slices.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list ResourceSlices: %w", err)
	}
	claims, err := c.claims.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list ResourceClaims: %w", err)
	}
	return c.writeStatus(ctx, policy, ReadyStatus(policy, rs, claims, now))
}

func (c *Controller) policy() (*v1alpha1.TierPolicy, error) {
	obj, err := c.policies.Get(c.cfg.PolicyName)
	if err != nil {
		return nil, fmt.Errorf("get TierPolicy %s: %w", c.cfg.PolicyName, err)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("TierPolicy %s: unexpected %T in cache", c.cfg.PolicyName, obj)
	}
	return v1alpha1.TierPolicyFromUnstructured(u)
}

// applyClasses server-side applies every desired class that differs from
// the cached one, then deletes the managed classes no longer desired.
func (c *Controller) applyClasses(ctx context.Context, desired []*resourceapi.DeviceClass) error {
	logger := klog.FromContext(ctx)
	existing, err := c.classes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list managed DeviceClasses: %w", err)
	}
	byName := make(map[string]*resourceapi.DeviceClass, len(existing))
	for _, e := range existing {
		byName[e.Name] = e
	}
	var errs []error
	for _, d := range desired {
		if upToDate(byName[d.Name], d) {
			continue
		}
		if err := c.applyClass(ctx, d); err != nil {
			errs = append(errs, err)
			continue
		}
		logger.Info("Applied DeviceClass", "deviceClass", klog.KObj(d))
	}
	for _, name := range PruneSet(existing, desired) {
		err := c.kube.ResourceV1().DeviceClasses().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("prune DeviceClass %s: %w", name, err))
			continue
		}
		logger.Info("Pruned DeviceClass", "deviceClass", name)
	}
	return errors.Join(errs...)
}

func upToDate(existing, desired *resourceapi.DeviceClass) bool {
	if existing == nil {
		return false
	}
	for k, v := range desired.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	return sameJSON(existing.Spec, desired.Spec)
}

// sameJSON compares two values by their JSON documents, so opaque
// parameters that the apiserver re-encoded (key order, spacing) compare
// equal.
func sameJSON(a, b any) bool {
	var docs [2]any
	for i, v := range []any{a, b} {
		data, err := json.Marshal(v)
		if err != nil || json.Unmarshal(data, &docs[i]) != nil {
			return false
		}
	}
	return reflect.DeepEqual(docs[0], docs[1])
}

func (c *Controller) applyClass(ctx context.Context, class *resourceapi.DeviceClass) error {
	obj := class.DeepCopy()
	obj.APIVersion, obj.Kind = resourceapi.SchemeGroupVersion.String(), "DeviceClass"
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode DeviceClass %s: %w", class.Name, err)
	}
	_, err = c.kube.ResourceV1().DeviceClasses().Patch(ctx, class.Name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
	if err != nil {
		return fmt.Errorf("apply DeviceClass %s: %w", class.Name, err)
	}
	return nil
}

// writeStatus updates the status subresource when st differs from the
// policy's; a conflict is returned and retried with the queue's backoff.
func (c *Controller) writeStatus(ctx context.Context, policy *v1alpha1.TierPolicy, st v1alpha1.TierPolicyStatus) error {
	if apiequality.Semantic.DeepEqual(policy.Status, st) {
		return nil
	}
	updated := policy.DeepCopy()
	updated.Status = st
	updated.APIVersion, updated.Kind = v1alpha1.SchemeGroupVersion.String(), v1alpha1.TierPolicyKind
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(updated)
	if err != nil {
		return fmt.Errorf("encode TierPolicy %s status: %w", policy.Name, err)
	}
	_, err = c.dyn.Resource(v1alpha1.TierPolicyResource).UpdateStatus(ctx, &unstructured.Unstructured{Object: u},
		metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("update TierPolicy %s status: %w", policy.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated TierPolicy status", "generation", policy.Generation)
	return nil
}
