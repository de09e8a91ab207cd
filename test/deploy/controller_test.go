package deploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/controller"
	tt "github.com/tierra-gpu/tierra/pkg/testing"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// forbidden reports whether a call failed authorization.
func forbidden(err error) bool { return apierrors.IsForbidden(err) }

// testControllerLeastPrivilege calls the API as the controller's service
// account: what pkg/controller does is allowed, the rest is refused.
func (s *suite) testControllerLeastPrivilege(t *testing.T) {
	probe := &v1alpha1.TierPolicy{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe"}, Spec: v1alpha1.DefaultTierPolicy().Spec}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(probe)
	require.NoError(t, err)
	u["apiVersion"], u["kind"] = v1alpha1.SchemeGroupVersion.String(), "TierPolicy"
	_, err = s.dyn.Resource(controller.TierPolicyResource).Create(s.ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
	require.NoError(t, err)

	id := s.identityOf(t, controllerName, nil)
	cs := id.cs
	dyn, err := dynamic.NewForConfig(id.cfg)
	require.NoError(t, err)
	policies := dyn.Resource(controller.TierPolicyResource)
	class := &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "probe." + v1alpha1.DriverName}}
	calls := map[string]struct {
		call    func(context.Context) error
		allowed bool
	}{
		"list DeviceClasses": {allowed: true, call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{})
			return err
		}},
		"create DeviceClasses": {allowed: true, call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().DeviceClasses().Create(ctx, class, metav1.CreateOptions{})
			return err
		}},
		"delete DeviceClasses": {allowed: true, call: func(ctx context.Context) error {
			return ignoreNotFound(cs.ResourceV1().DeviceClasses().Delete(ctx, "absent."+v1alpha1.DriverName, metav1.DeleteOptions{}))
		}},
		"watch ResourceSlices": {allowed: true, call: func(ctx context.Context) error { return watchOnce(ctx, cs.ResourceV1().ResourceSlices().Watch) }},
		"watch ResourceClaims": {allowed: true, call: func(ctx context.Context) error { return watchOnce(ctx, cs.ResourceV1().ResourceClaims("").Watch) }},
		"watch TierPolicies":   {allowed: true, call: func(ctx context.Context) error { return watchOnce(ctx, policies.Watch) }},
		"update TierPolicy status": {allowed: true, call: func(ctx context.Context) error {
			p, err := policies.Get(ctx, probe.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_ = unstructured.SetNestedField(p.Object, int64(7), "status", "tierCount")
			_, err = policies.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		"create events": {allowed: true, call: func(ctx context.Context) error {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe."}, InvolvedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: namespace, Name: controllerName},
				Reason: "Probe", Message: "rbac probe", Type: corev1.EventTypeNormal}
			_, err := cs.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
			return err
		}},

		"update a TierPolicy's spec": {call: func(ctx context.Context) error {
			p, err := policies.Get(ctx, probe.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.SetLabels(map[string]string{"changed": "yes"})
			_, err = policies.Update(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		"read Secrets": {call: func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		"read a Secret": {call: func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{})
			return err
		}},
		"create Pods": {call: func(ctx context.Context) error {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
			_, err := cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
			return err
		}},
		"delete Pods": {call: func(ctx context.Context) error {
			return cs.CoreV1().Pods(namespace).Delete(ctx, "plugin-on-a", metav1.DeleteOptions{})
		}},
		"read Nodes": {call: func(ctx context.Context) error {
			_, err := cs.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
			return err
		}},
		"create ResourceSlices": {call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceSlices().Create(ctx, slice("ctl", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
			return err
		}},
		"get a ResourceClaim": {call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims("claim-status").Get(ctx, "on-a", metav1.GetOptions{})
			return err
		}},
		"create ResourceClaims": {call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims(namespace).Create(ctx, tt.MakeClaim("c", namespace).Request("r", tiers.ClassGPU).Obj(), metav1.CreateOptions{})
			return err
		}},
		"write claim status": {call: func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims("claim-status").UpdateStatus(ctx, tt.MakeClaim("on-a", "claim-status").Obj(), metav1.UpdateOptions{})
			return err
		}},
		"create TierPolicies": {call: func(ctx context.Context) error {
			_, err := policies.Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
			return err
		}},
		"bind itself a role": {call: func(ctx context.Context) error {
			_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, adminBinding(), metav1.CreateOptions{})
			return err
		}},
		"list ConfigMaps": {call: func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
			return err
		}},
		"create ServiceAccount tokens": {call: func(ctx context.Context) error {
			_, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, pluginName, tokenRequest(), metav1.CreateOptions{})
			return err
		}},
	}
	for name, tc := range calls {
		t.Run(name, func(t *testing.T) {
			err := tc.call(s.ctx)
			if tc.allowed {
				require.NoError(t, err, "the controller needs to %s", name)
				return
			}
			assert.True(t, forbidden(err), "the controller must not %s; got %v", name, err)
		})
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// watchOnce opens a watch and closes it: the informers' list+watch.
func watchOnce(ctx context.Context, open func(context.Context, metav1.ListOptions) (watch.Interface, error)) error {
	w, err := open(ctx, metav1.ListOptions{TimeoutSeconds: ptr.To[int64](1)})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

func adminBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: controllerName, Namespace: namespace}}}
}
