package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// parityLabel prefixes the namespace labels of the parity cases.
const parityLabel = "parity.tierra.dev/"

// parityPolicy is a TierPolicy with the demo's tiers, the tenants and the
// open tenant's rule.
func parityPolicy(open *v1alpha1.OpenTenant, tenants ...v1alpha1.Tenant) *v1alpha1.TierPolicy {
	p := tierratest.MakePolicy().Tier(v1alpha1.TierTraining, v1alpha1.PartitioningWhole).
		Tier(v1alpha1.TierInference, v1alpha1.PartitioningMIG).
		Tier(v1alpha1.TierDev, v1alpha1.PartitioningShared).Obj()
	p.Spec.Tenants = tenants
	p.Spec.OpenTenant = open
	return p
}

func tenant(name string, sel metav1.LabelSelector, allowed ...string) v1alpha1.Tenant {
	return v1alpha1.Tenant{Name: name, NamespaceSelector: sel, AllowedTiers: allowed}
}

func labelsSel(kv ...string) metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[parityLabel+kv[i]] = kv[i+1]
	}
	return metav1.LabelSelector{MatchLabels: m}
}

func exprSel(exprs ...metav1.LabelSelectorRequirement) metav1.LabelSelector {
	return metav1.LabelSelector{MatchExpressions: exprs}
}

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: parityLabel + key, Operator: op, Values: values}
}

// parityCase is a namespace's labels and the tenant it must belong to.
type parityCase struct {
	labels map[string]string
	want   string
}

// parityGroup is a policy and the cases run under it.
type parityGroup struct {
	policy *v1alpha1.TierPolicy
	cases  map[string]parityCase
}

func nsLabels(kv ...string) map[string]string { return labelsSel(kv...).MatchLabels }

// parityGroups run in order; each one's first case (by name) tells when
// the apiserver serves its policy, so its answer must differ from the
// previous group's.
var parityGroups = []parityGroup{
	{
		policy: parityPolicy(&v1alpha1.OpenTenant{AllowedTiers: []string{v1alpha1.TierDev}},
			// First, so it would win if an empty selector matched anything.
			tenant("empty", metav1.LabelSelector{}, v1alpha1.TierTraining),
			tenant("labels", labelsSel("team", "a", "env", "prod"), v1alpha1.TierInference),
			tenant("in", exprSel(req("team", metav1.LabelSelectorOpIn, "b", "c")), v1alpha1.TierDev),
			tenant("first", labelsSel("team", "d"), v1alpha1.TierTraining, v1alpha1.TierDev),
			tenant("second", labelsSel("team", "d"), v1alpha1.TierInference),
			tenant("exists", exprSel(req("gpu", metav1.LabelSelectorOpExists)), v1alpha1.TierTraining, v1alpha1.TierInference),
			tenant("notin", exprSel(req("team", metav1.LabelSelectorOpNotIn, "a", "b", "c", "d", "e"), req("notin", metav1.LabelSelectorOpExists)),
				v1alpha1.TierInference, v1alpha1.TierDev),
			tenant("dne", exprSel(req("env", metav1.LabelSelectorOpDoesNotExist), req("dne", metav1.LabelSelectorOpExists)),
				v1alpha1.TierTraining, v1alpha1.TierInference, v1alpha1.TierDev),
			tenant("both", metav1.LabelSelector{MatchLabels: nsLabels("both", "x"), MatchExpressions: []metav1.LabelSelectorRequirement{req("team", metav1.LabelSelectorOpIn, "z")}},
				v1alpha1.TierDev),
		),
		cases: map[string]parityCase{
			"0 matchLabels, all of them":                {labels: nsLabels("team", "a", "env", "prod"), want: "labels"},
			"empty selector matches nothing":            {want: tenancy.Open},
			"matchLabels, one missing":                  {labels: nsLabels("team", "a"), want: tenancy.Open},
			"matchLabels, another value":                {labels: nsLabels("team", "a", "env", "dev"), want: tenancy.Open},
			"In":                                        {labels: nsLabels("team", "c"), want: "in"},
			"In, a value not listed":                    {labels: nsLabels("team", "e"), want: tenancy.Open},
			"overlapping tenants: the first wins":       {labels: nsLabels("team", "d"), want: "first"},
			"Exists":                                    {labels: nsLabels("gpu", ""), want: "exists"},
			"NotIn, key absent":                         {labels: nsLabels("notin", "y"), want: "notin"},
			"NotIn, a listed value":                     {labels: nsLabels("notin", "y", "team", "e"), want: tenancy.Open},
			"NotIn, another value":                      {labels: nsLabels("notin", "y", "team", "q"), want: "notin"},
			"DoesNotExist":                              {labels: nsLabels("dne", "y"), want: "dne"},
			"DoesNotExist, key present":                 {labels: nsLabels("dne", "y", "env", "x"), want: tenancy.Open},
			"matchLabels and matchExpressions, both":    {labels: nsLabels("both", "x", "team", "z"), want: "both"},
			"matchLabels and matchExpressions, one":     {labels: nsLabels("both", "x"), want: tenancy.Open},
			"a label naming a tenant makes no tenant":   {labels: map[string]string{v1alpha1.TenantLabel: "labels"}, want: tenancy.Open},
			"the open tenant's allowed tiers, any name": {labels: nsLabels("other", "label"), want: tenancy.Open},
		},
	},
	{
		policy: parityPolicy(nil),
		cases: map[string]parityCase{
			"0 no tenants at all":            {labels: nsLabels("team", "a", "env", "prod"), want: tenancy.Open},
			"no tenants, openTenant unset":   {want: tenancy.Open},
			"no tenants, labels of a tenant": {labels: nsLabels("team", "d"), want: tenancy.Open},
		},
	},
	{
		policy: parityPolicy(&v1alpha1.OpenTenant{}),
		cases: map[string]parityCase{
			"0 the open tenant allowed nothing": {labels: nsLabels("team", "a", "env", "prod"), want: tenancy.Open},
		},
	},
	{
		policy: parityPolicy(&v1alpha1.OpenTenant{AllowedTiers: []string{v1alpha1.TierInference, v1alpha1.TierTraining}},
			tenant("labels", labelsSel("team", "a", "env", "prod"), v1alpha1.TierInference)),
		cases: map[string]parityCase{
			"0 a tenant, open tenant of two tiers": {labels: nsLabels("team", "a", "env", "prod"), want: "labels"},
			"the open tenant of two tiers":         {want: tenancy.Open},
		},
	},
}

var (
	tenantOfSelector = regexp.MustCompile(`\.tenant == "([^"]*)"$`)
	tiersOfSelector  = regexp.MustCompile(`\.tier in \[([^\]]*)\]$`)
)

// testParity runs the same cases through pkg/tenancy (Resolve, Allowed) and
// through the chart's CEL as the apiserver evaluates it, and requires the
// same tenant and the same allowed tiers: the tenant and tiers read back
// from the selectors the MutatingAdmissionPolicy adds to a claim, and the
// tier classes the ValidatingAdmissionPolicy refuses. It restores the demo
// policy.
func (s *suite) testParity(t *testing.T, a *applier, demoPolicy *unstructured.Unstructured) {
	prev, err := policyFrom(demoPolicy)
	require.NoError(t, err)
	demo := prev
	defer s.replacePolicy(t, a, demo)
	namespaces := map[string]string{}
	for gi, g := range parityGroups {
		require.Empty(t, g.policy.Validate(), "group %d: the policy must be valid", gi)
		for name, c := range g.cases {
			ns := fmt.Sprintf("parity-%d-%d", gi, len(namespaces))
			namespaces[name] = ns
			require.NoError(t, ensureNamespace(s.ctx, s.cs, ns, c.labels))
		}
	}
	for gi, g := range parityGroups {
		s.replacePolicy(t, a, g.policy)
		names := make([]string, 0, len(g.cases))
		for name := range g.cases {
			names = append(names, name)
		}
		slices.Sort(names)
		s.waitPolicyServed(t, prev, g, namespaces[names[0]], names[0])
		for _, name := range names {
			t.Run(fmt.Sprintf("%d/%s", gi, name), func(t *testing.T) {
				s.checkParity(t, g.policy, namespaces[name], g.cases[name])
			})
		}
		prev = g.policy
	}
}

// waitPolicyServed waits until the tenancy MAP answers the witness case as
// the group's policy says, an answer the previous policy does not give.
func (s *suite) waitPolicyServed(t *testing.T, prev *v1alpha1.TierPolicy, g parityGroup, ns, witness string) {
	t.Helper()
	c := g.cases[witness]
	want := tslices.AdmissionSelectors(g.policy, c.want)
	prevTenant, err := tenancy.Resolve(prev, c.labels)
	require.NoError(t, err)
	require.NotEqual(t, tslices.AdmissionSelectors(prev, prevTenant), want, "witness %q cannot tell the policies apart", witness)
	var got []string
	err = wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		claim, err := s.dryRunClaim(ctx, ns, tiers.ClassGPU)
		if err != nil {
			return false, err
		}
		got = celSelectors(claim.Spec.Devices.Requests[0].Exactly.Selectors)
		return slices.Equal(got, want), nil
	})
	require.NoError(t, err, "the apiserver never served the policy: witness %q got %q, want %q", witness, got, want)
}

// checkParity compares pkg/tenancy's answer for one namespace with the
// chart's admission policies'.
func (s *suite) checkParity(t *testing.T, policy *v1alpha1.TierPolicy, ns string, c parityCase) {
	goTenant, err := tenancy.Resolve(policy, c.labels)
	require.NoError(t, err)
	assert.Equal(t, c.want, goTenant, "Go resolver")
	var goAllowed []string
	for _, tier := range policy.TierNames() {
		if tenancy.Allowed(policy, goTenant, tier) {
			goAllowed = append(goAllowed, tier)
		}
	}

	// A plain-class request, and a firstAvailable request whose second
	// subrequest has a selector of its own: every one gets the same
	// selectors after its own.
	own := `device.driver == "gpu.tierra.dev"`
	claim := tierratest.MakeClaim("parity", ns).Request("gpu", tiers.ClassGPU).
		FirstAvailable("fa", tierratest.Sub("small", tiers.ClassMIG), tierratest.Sub("big", tiers.ClassGPU, own)).Obj()
	claim.UID = ""
	stored, err := s.cs.ResourceV1().ResourceClaims(ns).Create(s.ctx, claim, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	var lists [][]string
	for _, r := range stored.Spec.Devices.Requests {
		if r.Exactly != nil {
			lists = append(lists, celSelectors(r.Exactly.Selectors))
		}
		for _, sub := range r.FirstAvailable {
			lists = append(lists, slices.DeleteFunc(celSelectors(sub.Selectors), func(e string) bool { return e == own }))
		}
	}
	for _, got := range lists {
		require.NotEmpty(t, got, "the MAP adds the tenant selector to every request")
		m := tenantOfSelector.FindStringSubmatch(got[0])
		require.NotNil(t, m, "tenant selector %q", got[0])
		assert.Equal(t, goTenant, m[1], "the chart's CEL resolves another tenant")
		celAllowed := policy.TierNames()
		if len(got) > 1 {
			tm := tiersOfSelector.FindStringSubmatch(got[1])
			require.NotNil(t, tm, "tier selector %q", got[1])
			celAllowed = nil
			for _, q := range strings.Split(tm[1], ", ") {
				if q != "" {
					celAllowed = append(celAllowed, strings.Trim(q, `"`))
				}
			}
		}
		assert.Equal(t, goAllowed, celAllowed, "allowed tiers")
		assert.Equal(t, tslices.AdmissionSelectors(policy, goTenant), got)
	}

	// The VAP refuses exactly the tier classes the tenant may not claim.
	for _, tier := range policy.TierNames() {
		_, err := s.dryRunClaim(s.ctx, ns, tiers.ClassName(tier))
		if tenancy.Allowed(policy, goTenant, tier) {
			assert.NoError(t, err, "tier %s", tier)
			continue
		}
		require.Error(t, err, "tier %s", tier)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "refused by admission: %v", err)
		wantWho := "tenant " + goTenant + " (namespace " + ns + ")"
		if goTenant == tenancy.Open {
			wantWho = "namespace " + ns + " (no tenant)"
		}
		allowed := "none"
		if len(goAllowed) > 0 {
			allowed = strings.Join(goAllowed, ", ")
		}
		assert.Contains(t, err.Error(), wantWho+" may not claim DeviceClass "+tiers.ClassName(tier)+"; its allowed tiers are: "+allowed)
	}
}

// dryRunClaim creates, as a dry run, a claim for one device of the class
// in the namespace, and returns the claim admission made of it.
func (s *suite) dryRunClaim(ctx context.Context, ns, class string) (*resourceapi.ResourceClaim, error) {
	claim := tierratest.MakeClaim("parity", ns).Request("gpu", class).Obj()
	claim.UID = ""
	return s.cs.ResourceV1().ResourceClaims(ns).Create(ctx, claim, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// policyFrom converts an applied TierPolicy object.
func policyFrom(u *unstructured.Unstructured) (*v1alpha1.TierPolicy, error) {
	p := &v1alpha1.TierPolicy{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
		return nil, fmt.Errorf("TierPolicy %s: %w", u.GetName(), err)
	}
	return p, nil
}

// replacePolicy replaces the spec of the cluster's TierPolicy with p's (an
// update, not an apply: an apply would leave empty objects where the old
// spec had fields the new one lacks).
func (s *suite) replacePolicy(t *testing.T, a *applier, p *v1alpha1.TierPolicy) {
	t.Helper()
	data, err := json.Marshal(p.Spec)
	require.NoError(t, err)
	spec := map[string]any{}
	require.NoError(t, json.Unmarshal(data, &spec))
	ri, err := a.resource(policyObject())
	require.NoError(t, err)
	cur, err := ri.Get(s.ctx, p.Name, metav1.GetOptions{})
	require.NoError(t, err)
	cur.Object["spec"] = spec
	_, err = ri.Update(s.ctx, cur, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// policyObject is an empty TierPolicy object, to map its kind.
func policyObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(v1alpha1.SchemeGroupVersion.String())
	u.SetKind(v1alpha1.TierPolicyKind)
	return u
}
