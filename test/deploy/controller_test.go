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
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// forbidden reports whether a call failed authorization.
func forbidden(err error) bool { return apierrors.IsForbidden(err) }

type apiCall func(context.Context) error

// controllerCalls are API calls made with the controller's identity.
type controllerCalls struct {
	cs       kubernetes.Interface
	policies dynamic.NamespaceableResourceInterface
	// probe is a TierPolicy the admin created, as unstructured content.
	probe map[string]any
}

// testControllerLeastPrivilege calls the API as the controller's service
// account: what pkg/controller does is allowed, the rest is refused.
func (s *suite) testControllerLeastPrivilege(t *testing.T) {
	probe := &v1alpha1.TierPolicy{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe"}, Spec: v1alpha1.DefaultTierPolicy().Spec}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(probe)
	require.NoError(t, err)
	u["apiVersion"], u["kind"] = v1alpha1.SchemeGroupVersion.String(), "TierPolicy"
	_, err = s.dyn.Resource(v1alpha1.TierPolicyResource).Create(s.ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
	require.NoError(t, err)

	id := s.identityOf(t, controllerName, nil)
	dyn, err := dynamic.NewForConfig(id.cfg)
	require.NoError(t, err)
	calls := controllerCalls{cs: id.cs, policies: dyn.Resource(v1alpha1.TierPolicyResource), probe: u}
	for name, call := range calls.allowed() {
		t.Run("may "+name, func(t *testing.T) {
			require.NoError(t, call(s.ctx), "the controller needs to %s", name)
		})
	}
	for name, call := range calls.refused() {
		t.Run("may not "+name, func(t *testing.T) {
			err := call(s.ctx)
			assert.True(t, forbidden(err), "the controller must not %s; got %v", name, err)
		})
	}
}

// allowed are the calls pkg/controller makes.
func (c controllerCalls) allowed() map[string]apiCall {
	classes := c.cs.ResourceV1().DeviceClasses()
	class := &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "probe." + v1alpha1.DriverName}}
	return map[string]apiCall{
		"list DeviceClasses": func(ctx context.Context) error { _, err := classes.List(ctx, metav1.ListOptions{}); return err },
		"create DeviceClasses": func(ctx context.Context) error {
			_, err := classes.Create(ctx, class, metav1.CreateOptions{})
			return err
		},
		"delete DeviceClasses": func(ctx context.Context) error {
			return ignoreNotFound(classes.Delete(ctx, "absent."+v1alpha1.DriverName, metav1.DeleteOptions{}))
		},
		"watch ResourceSlices": func(ctx context.Context) error { return watchOnce(ctx, c.cs.ResourceV1().ResourceSlices().Watch) },
		"watch ResourceClaims": func(ctx context.Context) error { return watchOnce(ctx, c.cs.ResourceV1().ResourceClaims("").Watch) },
		"watch TierPolicies":   func(ctx context.Context) error { return watchOnce(ctx, c.policies.Watch) },
		"update TierPolicy status": func(ctx context.Context) error {
			p, err := c.policies.Get(ctx, "rbac-probe", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_ = unstructured.SetNestedField(p.Object, int64(7), "status", "tierCount")
			_, err = c.policies.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		},
		"create events": func(ctx context.Context) error {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe."}, Reason: "Probe", Message: "rbac probe", Type: corev1.EventTypeNormal,
				InvolvedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: namespace, Name: controllerName}}
			_, err := c.cs.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
			return err
		},
	}
}

// refused are calls outside the controller's job.
func (c controllerCalls) refused() map[string]apiCall {
	cs := c.cs
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	claim := tierratest.MakeClaim("c", namespace).Request("r", tiers.ClassGPU).Obj()
	return map[string]apiCall{
		"update a TierPolicy's spec": func(ctx context.Context) error {
			p, err := c.policies.Get(ctx, "rbac-probe", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.SetLabels(map[string]string{"changed": "yes"})
			_, err = c.policies.Update(ctx, p, metav1.UpdateOptions{})
			return err
		},
		"create TierPolicies": func(ctx context.Context) error {
			_, err := c.policies.Create(ctx, &unstructured.Unstructured{Object: c.probe}, metav1.CreateOptions{})
			return err
		},
		"list Secrets": func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
			return err
		},
		"read a Secret": func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{})
			return err
		},
		"list ConfigMaps": func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
			return err
		},
		"create Pods": func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
			return err
		},
		"delete Pods": func(ctx context.Context) error {
			return cs.CoreV1().Pods(namespace).Delete(ctx, "plugin-on-a", metav1.DeleteOptions{})
		},
		"read Nodes": func(ctx context.Context) error {
			_, err := cs.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
			return err
		},
		"create ResourceSlices": func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceSlices().Create(ctx, slice("ctl", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
			return err
		},
		"get a ResourceClaim": func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims("claim-status").Get(ctx, "on-a", metav1.GetOptions{})
			return err
		},
		"create ResourceClaims": func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims(namespace).Create(ctx, claim, metav1.CreateOptions{})
			return err
		},
		"write claim status": func(ctx context.Context) error {
			_, err := cs.ResourceV1().ResourceClaims("claim-status").UpdateStatus(ctx, tierratest.MakeClaim("on-a", "claim-status").Obj(), metav1.UpdateOptions{})
			return err
		},
		"bind itself a role": func(ctx context.Context) error {
			_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, adminBinding(), metav1.CreateOptions{})
			return err
		},
		"create service account tokens": func(ctx context.Context) error {
			_, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, pluginName, tokenRequest(), metav1.CreateOptions{})
			return err
		},
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
