package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func TestDecodeTierPolicy(t *testing.T) {
	good, err := yaml.Marshal(DefaultTierPolicy())
	require.NoError(t, err)
	p, err := DecodeTierPolicy(good)
	require.NoError(t, err)
	assert.Equal(t, DefaultTierPolicy().Spec.Tiers, p.Spec.Tiers)

	for name, tc := range map[string]struct{ doc, want string }{
		"wrong kind":    {"apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n", `want apiVersion tierra.dev/v1alpha1, kind TierPolicy; got "v1", "ConfigMap"`},
		"no type meta":  {"spec:\n  tiers: []\n", `got "", ""`},
		"unknown field": {"apiVersion: tierra.dev/v1alpha1\nkind: TierPolicy\nspec:\n  tierz: []\n", `unknown field "spec.tierz"`},
		"duplicate":     {"apiVersion: tierra.dev/v1alpha1\nkind: TierPolicy\nkind: TierPolicy\n", `key "kind" already set in map`},
		"invalid":       {"apiVersion: tierra.dev/v1alpha1\nkind: TierPolicy\nmetadata: {name: p}\nspec:\n  tiers: [{name: a, partitioning: Halves}]\n", "invalid TierPolicy p: spec.tiers[0].partitioning"},
		"not yaml":      {"{", "decode TierPolicy"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeTierPolicy([]byte(tc.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTierPolicyFromUnstructured(t *testing.T) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(DefaultTierPolicy())
	require.NoError(t, err)
	p, err := TierPolicyFromUnstructured(&unstructured.Unstructured{Object: content})
	require.NoError(t, err)
	require.NoError(t, p.DefaultAndValidate())
	assert.Equal(t, DefaultTierPolicy().Spec, p.Spec)

	_, err = TierPolicyFromUnstructured(&unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"tiers": "x"}}})
	assert.ErrorContains(t, err, "decode TierPolicy")
}
