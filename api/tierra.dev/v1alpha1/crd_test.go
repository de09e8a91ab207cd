package v1alpha1

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// crdPath is the CRD `make generate` writes from this package.
var crdPath = filepath.Join("..", "..", "..", "deployments", "helm", "tierra", "crds", "tierra.dev_tierpolicies.yaml")

// dig walks nested maps; the test fails if a key is missing.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		require.Truef(t, ok, "%v is not an object", keys[:i])
		v, ok = m[k]
		require.Truef(t, ok, "missing %v", keys[:i+1])
	}
	return v
}

// TestTierPolicyCRD checks the generated CRD, parsed generically (the
// apiextensions types are not a dependency): run `make generate` after
// changing the types.
func TestTierPolicyCRD(t *testing.T) {
	raw, err := os.ReadFile(crdPath)
	require.NoError(t, err)
	var crd map[string]any
	require.NoError(t, yaml.UnmarshalStrict(raw, &crd))

	assert.Equal(t, "apiextensions.k8s.io/v1", crd["apiVersion"])
	assert.Equal(t, "CustomResourceDefinition", crd["kind"])
	assert.Equal(t, "tierpolicies.tierra.dev", dig(t, crd, "metadata", "name"))
	spec := dig(t, crd, "spec")
	assert.Equal(t, GroupName, dig(t, spec, "group"))
	assert.Equal(t, "Cluster", dig(t, spec, "scope"))
	assert.Equal(t, TierPolicyKind, dig(t, spec, "names", "kind"))
	assert.Equal(t, "TierPolicyList", dig(t, spec, "names", "listKind"))

	versions, ok := dig(t, spec, "versions").([]any)
	require.True(t, ok)
	require.Len(t, versions, 1)
	v := versions[0]
	assert.Equal(t, Version, dig(t, v, "name"))
	assert.Equal(t, true, dig(t, v, "served"))
	assert.Equal(t, true, dig(t, v, "storage"))
	assert.Equal(t, map[string]any{}, dig(t, v, "subresources", "status"))

	schema := dig(t, v, "schema", "openAPIV3Schema")
	assert.Equal(t, "object", dig(t, schema, "type"), "structural: the root has a type")
	tiers := dig(t, schema, "properties", "spec", "properties", "tiers")
	assert.Equal(t, []any{"tiers"}, dig(t, schema, "properties", "spec", "required"))
	assert.EqualValues(t, 1, dig(t, tiers, "minItems"))
	assert.Equal(t, "map", dig(t, tiers, "x-kubernetes-list-type"))
	assert.Equal(t, []any{"name"}, dig(t, tiers, "x-kubernetes-list-map-keys"))
	tier := dig(t, tiers, "items", "properties")
	assert.Equal(t, []any{"Whole", "MIG", "Shared"}, dig(t, tier, "partitioning", "enum"))
	assert.Equal(t, "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", dig(t, tier, "name", "pattern"))
	assert.Equal(t, []any{"Exclusive", "TimeSlicing", "MPS"}, dig(t, tier, "sharing", "properties", "strategy", "enum"))
	assert.Equal(t, []any{"Default", "Short", "Medium", "Long"},
		dig(t, tier, "sharing", "properties", "timeSlicing", "properties", "interval", "enum"))

	prices := dig(t, schema, "properties", "spec", "properties", "priceBook", "properties")
	assert.Equal(t, `^[0-9]+(\.[0-9]{1,6})?$`,
		dig(t, prices, "products", "items", "properties", "perGPUHour", "pattern"))
	discount := dig(t, prices, "overrides", "items", "properties", "discount")
	assert.EqualValues(t, 0, dig(t, discount, "minimum"))
	assert.EqualValues(t, 100, dig(t, discount, "maximum"))

	health := dig(t, schema, "properties", "spec", "properties", "health", "properties")
	actions := []any{"Ignore", "NoSchedule", "NoExecute"}
	for _, f := range []string{"otherXIDs", "doubleBitECC", "gpuLost"} {
		assert.Equal(t, actions, dig(t, health, f, "enum"), f)
	}
	xids := dig(t, health, "xids")
	assert.Equal(t, "map", dig(t, xids, "x-kubernetes-list-type"))
	assert.Equal(t, []any{"code"}, dig(t, xids, "x-kubernetes-list-map-keys"))
	assert.Equal(t, actions, dig(t, xids, "items", "properties", "action", "enum"))
	assert.EqualValues(t, 65535, dig(t, xids, "items", "properties", "code", "maximum"))
	assert.Equal(t, "string", dig(t, health, "quietPeriod", "type"))
}

// TestTierPolicyCRDPatterns checks the CRD's patterns agree with Validate on
// a few values, so the API server and the controller do not disagree.
func TestTierPolicyCRDPatterns(t *testing.T) {
	raw, err := os.ReadFile(crdPath)
	require.NoError(t, err)
	var crd map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &crd))
	versions := dig(t, crd, "spec", "versions").([]any)
	spec := dig(t, versions[0], "schema", "openAPIV3Schema", "properties", "spec", "properties")
	pricePattern := dig(t, spec, "priceBook", "properties", "default", "pattern").(string)
	memPattern := dig(t, spec, "tiers", "items", "properties", "gpus", "properties", "minMemory", "pattern").(string)

	tests := map[string]struct {
		pattern string
		value   string
		valid   bool
		isPrice bool
	}{
		"price":             {pattern: pricePattern, value: "2.75", valid: true, isPrice: true},
		"whole price":       {pattern: pricePattern, value: "3", valid: true, isPrice: true},
		"price 7 decimals":  {pattern: pricePattern, value: "0.0000001", isPrice: true},
		"price with dollar": {pattern: pricePattern, value: "$1", isPrice: true},
		"negative price":    {pattern: pricePattern, value: "-1", isPrice: true},
		"memory Gi":         {pattern: memPattern, value: "80Gi", valid: true},
		"memory decimal":    {pattern: memPattern, value: "80G", valid: true},
		"memory spaced":     {pattern: memPattern, value: "80 GiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.valid, regexp.MustCompile(tc.pattern).MatchString(tc.value), "CRD pattern")
			if tc.isPrice {
				_, err := ParsePrice(tc.value)
				assert.Equal(t, tc.valid, err == nil, "ParsePrice")
			} else {
				_, err := resource.ParseQuantity(tc.value)
				assert.Equal(t, tc.valid, err == nil, "ParseQuantity")
			}
		})
	}
}
