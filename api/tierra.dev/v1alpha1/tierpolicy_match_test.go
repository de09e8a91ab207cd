package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const gib = uint64(1) << 30

func TestGPUSelectorMatches(t *testing.T) {
	h100 := GPUSelector{Products: []string{ProductH100SXM}, MinMemory: "80Gi",
		NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "a"}}}
	tests := map[string]struct {
		sel     GPUSelector
		product string
		memory  uint64
		labels  labels.Set
		want    bool
		wantErr string
	}{
		"empty matches everything": {product: "anything", want: true},
		"empty non-nil selector matches everything": {
			sel: GPUSelector{NodeSelector: &metav1.LabelSelector{}}, want: true,
		},
		"all fields match": {sel: h100, product: ProductH100SXM, memory: 80 * gib, labels: labels.Set{"pool": "a"}, want: true},
		"other product":    {sel: h100, product: ProductH200SXM, memory: 141 * gib, labels: labels.Set{"pool": "a"}},
		"too little memory": {
			sel: h100, product: ProductH100SXM, memory: 80*gib - 1, labels: labels.Set{"pool": "a"},
		},
		"other node":    {sel: h100, product: ProductH100SXM, memory: 80 * gib, labels: labels.Set{"pool": "b"}},
		"no node label": {sel: h100, product: ProductH100SXM, memory: 80 * gib},
		"bad quantity": {
			sel: GPUSelector{MinMemory: "lots"}, wantErr: `minMemory "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
		},
		"bad selector": {
			sel: GPUSelector{NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "pool", Operator: metav1.LabelSelectorOpIn}}}},
			wantErr: `node selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.sel.Matches(tc.product, tc.memory, tc.labels)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTierFor(t *testing.T) {
	tests := map[string]struct {
		withoutDev bool // drop the catch-all dev tier
		product    string
		memory     uint64
		labels     labels.Set
		wantTier   string // "" means no tier
	}{
		"h200 trains":                 {product: ProductH200SXM, memory: 141 * gib, wantTier: TierTraining},
		"h100 80GB reporting 79.6GiB": {product: ProductH100SXM, memory: 81559 << 20, wantTier: TierTraining},
		"h200 on an inference node": {
			product: ProductH200SXM, memory: 141 * gib, labels: labels.Set{NodeTierLabel: TierInference}, wantTier: TierInference,
		},
		"h200 on a dev node": {
			product: ProductH200SXM, memory: 141 * gib, labels: labels.Set{NodeTierLabel: TierDev}, wantTier: TierDev,
		},
		"a100 falls through to dev": {product: ProductA100SXM80GB, memory: 80 * gib, wantTier: TierDev},
		"small h100 falls through":  {product: ProductH100SXM, memory: 40 * gib, wantTier: TierDev},
		"no tier matches":           {withoutDev: true, product: ProductA100SXM80GB, memory: 80 * gib},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			policy := DefaultTierPolicy()
			if tc.withoutDev {
				policy.Spec.Tiers = policy.Spec.Tiers[:2]
			}
			got, err := policy.TierFor(tc.product, tc.memory, tc.labels)
			require.NoError(t, err)
			if tc.wantTier == "" {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, tc.wantTier, got.Name)
			assert.Same(t, policy.Tier(tc.wantTier), got, "points into the policy")
		})
	}
	t.Run("bad selector is an error naming the tier", func(t *testing.T) {
		bad := DefaultTierPolicy()
		bad.Spec.Tiers[0].GPUs.MinMemory = "lots"
		_, err := bad.TierFor(ProductH200SXM, 141*gib, nil)
		require.ErrorContains(t, err, `tier "training": gpus: minMemory "lots"`)
	})
}
