package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/plan"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// testTenancy installs the demo's TierPolicy (demo/tierpolicy.yaml: tenant
// research may claim training, inference and dev; tenant product only
// inference and dev) and tenant namespaces (demo/kind/namespaces.yaml), and
// applies the demo scenarios' claims, the manifests `make demo` and
// demo/kind use; then asks for tiers a tenant may not have.
func (s *suite) testTenancy(t *testing.T) {
	a := newApplier(t, s.cfg)
	policy := decodeFile(t, filepath.Join(s.root, "demo/tierpolicy.yaml"))
	require.Len(t, policy, 1)
	require.NoError(t, a.apply(s.ctx, policy[0]))
	// The tenants' namespaces, as demo/kind creates them.
	for _, ns := range decodeFile(t, filepath.Join(s.root, "demo/kind/namespaces.yaml")) {
		require.NoError(t, a.apply(s.ctx, ns))
	}
	require.NoError(t, ensureNamespace(s.ctx, s.cs, "no-tenant", nil))

	templates := s.cs.ResourceV1().ResourceClaimTemplates("product")
	training := claimTemplate("wants-training", tierratest.MakeClaim("", "").Request("gpu", tiers.ClassName("training")).Obj())
	waitRefused(t, s.ctx, func(ctx context.Context) error {
		_, err := templates.Create(ctx, training, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})
	_, err := templates.Create(s.ctx, training, metav1.CreateOptions{})
	require.Error(t, err, "tenant product may not claim the training tier")
	assert.Contains(t, err.Error(), "tenant product (namespace product) may not claim DeviceClass training.gpu.tierra.dev; its allowed tiers are: inference, serving, dev (TierPolicy default)")

	// The demo scenarios pass: every tenant asks only for its tiers.
	scenarios, err := filepath.Glob(filepath.Join(s.root, "demo/scenarios/*/*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, scenarios)
	claims := 0
	for _, f := range scenarios {
		for _, o := range decodeFile(t, f) {
			if o.GetKind() != "ResourceClaim" && o.GetKind() != "ResourceClaimTemplate" {
				continue
			}
			require.NoError(t, a.apply(s.ctx, o), "demo scenario %s: %s %s/%s", filepath.Base(f), o.GetKind(), o.GetNamespace(), o.GetName())
			claims++
		}
	}
	require.NotZero(t, claims, "the demo scenarios hold claims")

	tests := map[string]struct {
		ns      string
		claim   *resourceapi.ResourceClaim
		wantErr string
	}{
		"a claim of a disallowed tier": {ns: "product", claim: tierratest.MakeClaim("c1", "product").Request("gpu", tiers.ClassName("training")).Obj(),
			wantErr: "tenant product (namespace product) may not claim DeviceClass training.gpu.tierra.dev"},
		"a disallowed tier as a fallback": {ns: "product", claim: tierratest.MakeClaim("c2", "product").FirstAvailable("gpu",
			resourceapi.DeviceSubRequest{Name: "small", DeviceClassName: tiers.ClassName("inference")},
			resourceapi.DeviceSubRequest{Name: "big", DeviceClassName: tiers.ClassName("training")}).Obj(),
			wantErr: "may not claim DeviceClass training.gpu.tierra.dev"},
		"an allowed tier":                  {ns: "product", claim: tierratest.MakeClaim("c3", "product").Request("gpu", tiers.ClassName("inference")).Obj()},
		"training for a tenant allowed it": {ns: "research", claim: tierratest.MakeClaim("c5", "research").Request("gpu", tiers.ClassName("training")).Obj()},
		// The demo policy sets no openTenant: namespaces of no tenant may
		// claim every tier.
		"a namespace of no tenant": {ns: "no-tenant", claim: tierratest.MakeClaim("c6", "no-tenant").Request("gpu", tiers.ClassName("training")).Obj()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.claim.UID = ""
			_, err := s.cs.ResourceV1().ResourceClaims(tc.ns).Create(s.ctx, tc.claim, metav1.CreateOptions{})
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), "its allowed tiers are: inference, serving, dev")
		})
	}
	t.Run("a plain class reaches only the tenant's tiers", s.testPlainClassRestricted)
	t.Run("a policy change leaves existing claims deletable", func(t *testing.T) { s.testTierTakenAway(t, a, policy[0]) })
	t.Run("the chart's CEL and the Go resolver agree", func(t *testing.T) { s.testParity(t, a, policy[0]) })
}

// testPlainClassRestricted: a claim of the plain class gpu.tierra.dev, which
// reaches every tier's whole GPUs, is admitted in tenant product's
// namespace, but mutated: the claim the apiserver stores carries the
// selectors pkg/slices.AdmissionSelectors says, and through the scheduler's
// allocator it gets no training GPU (product may not claim training) while
// the same claim without them would; it still gets an inference GPU.
func (s *suite) testPlainClassRestricted(t *testing.T) {
	policy, err := plan.LoadPolicy(filepath.Join(s.root, "demo/tierpolicy.yaml"))
	require.NoError(t, err)
	sent := tierratest.MakeClaim("plain", "product").Request("gpu", tiers.ClassGPU).Obj()
	sent.UID = ""
	stored, err := s.cs.ResourceV1().ResourceClaims("product").Create(s.ctx, sent, metav1.CreateOptions{})
	require.NoError(t, err, "a plain-class claim is admitted")
	assert.Equal(t, []string{
		tslices.TenantSelector("product"),
		`!has(device.attributes["gpu.tierra.dev"].tier) || device.attributes["gpu.tierra.dev"].tier in ["inference", "serving", "dev"]`,
	}, celSelectors(stored.Spec.Devices.Requests[0].Exactly.Selectors))
	assert.Equal(t, tslices.AdmissionSelectors(policy, "product"), celSelectors(stored.Spec.Devices.Requests[0].Exactly.Selectors))

	h200 := tierratest.Machine(1, func(i int) inventory.GPU { return tierratest.H200(i) })
	var published []*resourceapi.ResourceSlice
	for node, tier := range map[string]string{"train": "training", "infer": "inference"} {
		dr, err := tslices.BuildWithOptions(tslices.Node{Name: node, Labels: map[string]string{"tierra.dev/tier": tier}, Machine: h200}, policy, tslices.Options{})
		require.NoError(t, err)
		published = append(published, tslices.ResourceSlices(node, dr)...)
	}
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	tests := map[string]struct {
		claim *resourceapi.ResourceClaim
		node  string
		want  []string
	}{
		"as sent, on a training node":     {claim: sent, node: "train", want: []string{"gpu-0"}},
		"as stored, on a training node":   {claim: stored, node: "train"},
		"as stored, on an inference node": {claim: stored, node: "infer", want: []string{"gpu-0"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tierratest.NewCluster(published, classes...).Allocate(s.ctx, tc.node, tc.claim)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// celSelectors lists the CEL expressions of selectors.
func celSelectors(sels []resourceapi.DeviceSelector) []string {
	var out []string
	for _, sel := range sels {
		if sel.CEL != nil {
			out = append(out, sel.CEL.Expression)
		}
	}
	return out
}

// testTierTakenAway: when the policy takes a tier away from a tenant, the
// tenant's existing claims of that tier still accept metadata updates
// (finalizer removal on deletion), while new ones are refused.
func (s *suite) testTierTakenAway(t *testing.T, a *applier, demoPolicy *unstructured.Unstructured) {
	claims := s.cs.ResourceV1().ResourceClaims("product")
	claim := tierratest.MakeClaim("before-change", "product").Request("gpu", tiers.ClassName("inference")).Obj()
	claim.UID = ""
	claim.Finalizers = []string{"tierra.dev/test"}
	claim, err := claims.Create(s.ctx, claim, metav1.CreateOptions{})
	require.NoError(t, err)

	narrowed := demoPolicy.DeepCopy()
	tenants, _, err := unstructured.NestedSlice(narrowed.Object, "spec", "tenants")
	require.NoError(t, err)
	for _, tenant := range tenants {
		if m := tenant.(map[string]any); m["name"] == "product" {
			m["allowedTiers"] = []any{"dev"}
		}
	}
	require.NoError(t, unstructured.SetNestedSlice(narrowed.Object, tenants, "spec", "tenants"))
	require.NoError(t, a.apply(s.ctx, narrowed))
	defer func() { require.NoError(t, a.apply(s.ctx, demoPolicy), "restore the demo policy") }()
	again := tierratest.MakeClaim("after-change", "product").Request("gpu", tiers.ClassName("inference")).Obj()
	again.UID = ""
	waitRefused(t, s.ctx, func(ctx context.Context) error {
		_, err := claims.Create(ctx, again, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})

	require.NoError(t, claims.Delete(s.ctx, claim.Name, metav1.DeleteOptions{}))
	claim, err = claims.Get(s.ctx, claim.Name, metav1.GetOptions{})
	require.NoError(t, err)
	claim.Finalizers = nil
	_, err = claims.Update(s.ctx, claim, metav1.UpdateOptions{})
	require.NoError(t, err, "removing the finalizer of a claim the policy no longer allows")
}

// claimTemplate wraps a claim's spec in a ResourceClaimTemplate.
func claimTemplate(name string, claim *resourceapi.ResourceClaim) *resourceapi.ResourceClaimTemplate {
	return &resourceapi.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourceapi.ResourceClaimTemplateSpec{Spec: claim.Spec}}
}

// decodeFile reads the objects of a YAML file.
func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return decode(t, string(data))
}
