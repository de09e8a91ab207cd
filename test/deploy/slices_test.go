package deploy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

func (s *suite) testPluginTokenCarriesItsNode(t *testing.T) {
	plugin := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-on-a", nodeA))
	who, err := plugin.whoami(s.ctx)
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:"+namespace+":"+pluginName, who.Username)
	assert.Equal(t, []string{nodeA}, []string(who.Extra[nodeNameExtra]), "a token bound to a pod on node A names node A")
}

// slice is a minimal ResourceSlice of a driver's pool on a node.
func slice(name, driver, node string) *resourceapi.ResourceSlice {
	return &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourceapi.ResourceSliceSpec{
			Driver:   driver,
			Pool:     resourceapi.ResourcePool{Name: node, Generation: 1, ResourceSliceCount: 1},
			NodeName: ptr.To(node),
			Devices:  []resourceapi.Device{{Name: "gpu-0"}},
		},
	}
}

func (s *suite) testNodeSlices(t *testing.T) {
	plugin := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-slices-on-a", nodeA))
	slices := plugin.cs.ResourceV1().ResourceSlices()

	// Admission policies take effect once the apiserver has loaded them:
	// wait (with dry runs, which admission sees too) for the first refusal.
	waitRefused(t, s.ctx, func(ctx context.Context) error {
		_, err := slices.Create(ctx, slice("b-from-a", v1alpha1.DriverName, nodeB), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})
	_, err := slices.Create(s.ctx, slice("b-from-a", v1alpha1.DriverName, nodeB), metav1.CreateOptions{})
	require.Error(t, err, "plugin on node A must not publish node B's slice")
	assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "refused by admission: %v", err)
	assert.Contains(t, err.Error(), "the kubelet plugin on node node-a may write only ResourceSlices of its own node, not node node-b")

	own, err := slices.Create(s.ctx, slice("a-from-a", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
	require.NoError(t, err, "plugin on node A publishes node A's slice")
	own.Spec.Pool.Generation = 2
	own, err = slices.Update(s.ctx, own, metav1.UpdateOptions{})
	require.NoError(t, err, "and updates it")

	_, err = slices.Create(s.ctx, slice("other-driver", "other.example.com", nodeA), metav1.CreateOptions{})
	require.Error(t, err, "another driver's slice, even on node A")
	assert.Contains(t, err.Error(), "only ResourceSlices of driver gpu.tierra.dev, not other.example.com")

	everywhere := slice("all-nodes", v1alpha1.DriverName, nodeA)
	everywhere.Spec.NodeName, everywhere.Spec.AllNodes = nil, ptr.To(true)
	_, err = slices.Create(s.ctx, everywhere, metav1.CreateOptions{})
	require.Error(t, err, "a slice for all nodes is not the plugin's to publish")
	assert.Contains(t, err.Error(), "not a slice without a node")

	_, err = slices.Create(s.ctx, pool(slice("a-as-b", v1alpha1.DriverName, nodeA), nodeB), metav1.CreateOptions{})
	require.Error(t, err, "plugin on node A must not publish node B's pool, even on a slice of node A")
	assert.Contains(t, err.Error(), "the kubelet plugin on node node-a may write only the pool named after its node, not pool node-b")

	// A slice of node B that node B's plugin wrote: the plugin on A cannot delete it.
	onB := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-slices-on-b", nodeB))
	_, err = onB.cs.ResourceV1().ResourceSlices().Create(s.ctx, slice("b-by-b", v1alpha1.DriverName, nodeB), metav1.CreateOptions{})
	require.NoError(t, err, "plugin on node B publishes node B's slice")
	err = slices.Delete(s.ctx, "b-by-b", metav1.DeleteOptions{})
	require.Error(t, err, "plugin on node A must not delete node B's slice")
	assert.Contains(t, err.Error(), "not node node-b")
	require.NoError(t, slices.Delete(s.ctx, own.Name, metav1.DeleteOptions{}), "plugin on node A deletes its own slice")
	err = slices.DeleteCollection(s.ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no deletecollection (it would bypass the per-node check): %v", err)

	// A token not bound to a pod on a node carries no node: refused.
	unbound := s.identityOf(t, pluginName, nil)
	_, err = unbound.cs.ResourceV1().ResourceSlices().Create(s.ctx, slice("a-unbound", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no authentication.kubernetes.io/node-name in the token")
}

// pool renames a slice's pool.
func pool(s *resourceapi.ResourceSlice, name string) *resourceapi.ResourceSlice {
	s.Spec.Pool.Name = name
	return s
}

// testForeignTierraSlices: an identity other than the plugin's, with RBAC
// rights to create ResourceSlices (a tenant's operator, a cluster admin),
// cannot publish or change devices of driver gpu.tierra.dev; its own
// driver's slices and deleting a Tierra slice (the kubelet and the garbage
// collector do) are not this policy's business.
func (s *suite) testForeignTierraSlices(t *testing.T) {
	const sa = "slice-publisher"
	s.grantSliceWriter(t, sa)
	foreign := s.identityOf(t, sa, nil).cs.ResourceV1().ResourceSlices()
	tenantUser := "system:serviceaccount:" + namespace + ":" + sa
	// RBAC takes effect once the authorizer's cache has the binding.
	err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := foreign.Create(ctx, slice("other-a", "other.example.com", nodeA), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, nil
	})
	require.NoError(t, err, "the slice writer's RBAC never took effect")

	tests := map[string]struct {
		write   func(ctx context.Context) error
		wantErr string
	}{
		"a tenant with slice rights publishes fake Tierra devices": {
			write: func(ctx context.Context) error {
				_, err := foreign.Create(ctx, slice("fake-a", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
				return err
			},
			wantErr: "only the kubelet plugin (system:serviceaccount:" + namespace + ":" + pluginName +
				") may create or update ResourceSlices of driver gpu.tierra.dev, not " + tenantUser},
		"the cluster admin publishes a Tierra slice": {
			write: func(ctx context.Context) error {
				_, err := s.cs.ResourceV1().ResourceSlices().Create(ctx, slice("admin-a", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
				return err
			},
			wantErr: "may create or update ResourceSlices of driver gpu.tierra.dev, not "},
		"a tenant adds a device to the plugin's slice": {
			write: func(ctx context.Context) error {
				plugin := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-for-update", nodeA))
				_, err := plugin.cs.ResourceV1().ResourceSlices().Create(ctx, slice("to-update", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
				require.NoError(t, err)
				got, err := foreign.Get(ctx, "to-update", metav1.GetOptions{})
				require.NoError(t, err)
				got.Spec.Devices = append(got.Spec.Devices, resourceapi.Device{Name: "gpu-fake"})
				_, err = foreign.Update(ctx, got, metav1.UpdateOptions{})
				return err
			},
			wantErr: "not " + tenantUser},
		"its own driver's slice": {
			write: func(ctx context.Context) error {
				_, err := foreign.Create(ctx, slice("other-a", "other.example.com", nodeA), metav1.CreateOptions{})
				return err
			}},
		"deleting a Tierra slice (as the kubelet does)": {
			write: func(ctx context.Context) error {
				plugin := s.identityOf(t, pluginName, s.podOn(t, pluginName, "plugin-for-delete", nodeA))
				_, err := plugin.cs.ResourceV1().ResourceSlices().Create(ctx, slice("to-delete", v1alpha1.DriverName, nodeA), metav1.CreateOptions{})
				require.NoError(t, err)
				return foreign.Delete(ctx, "to-delete", metav1.DeleteOptions{})
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.write(s.ctx)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "refused by admission: %v", err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// grantSliceWriter creates a service account in the release namespace that
// RBAC allows to write every ResourceSlice.
func (s *suite) grantSliceWriter(t *testing.T, sa string) {
	t.Helper()
	_, err := s.cs.CoreV1().ServiceAccounts(namespace).Create(s.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = s.cs.RbacV1().ClusterRoles().Create(s.ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"resource.k8s.io"}, Resources: []string{"resourceslices"},
			Verbs: []string{"get", "list", "create", "update", "delete"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = s.cs.RbacV1().ClusterRoleBindings().Create(s.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// waitRefused retries a dry-run call until admission refuses it (Forbidden
// or Invalid): the apiserver has loaded the policy.
func waitRefused(t *testing.T, ctx context.Context, dryRun func(context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = dryRun(ctx)
		return apierrors.IsForbidden(last) || apierrors.IsInvalid(last), nil
	})
	require.NoError(t, err, "the admission policy never refused the dry run; last answer: %v", last)
}
