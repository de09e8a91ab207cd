package cost

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

func TestPerGPUHour(t *testing.T) {
	spot := labels.Set{v1alpha1.CapacityTypeLabel: "spot"}
	book := v1alpha1.DefaultTierPolicy().Spec.PriceBook
	book.Overrides = append(book.Overrides, v1alpha1.PriceOverride{
		Name:         "reserved",
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"reserved": "true"}},
		Discount:     10,
		Products:     []v1alpha1.ProductPrice{{Product: v1alpha1.ProductB200, PerGPUHour: "4.10"}},
	})
	noDefault := book
	noDefault.Default = ""
	free := v1alpha1.PriceBook{Products: []v1alpha1.ProductPrice{{Product: "NVIDIA L4", PerGPUHour: "0"}}}
	tests := map[string]struct {
		book    v1alpha1.PriceBook
		product string
		labels  labels.Set
		want    v1alpha1.MicroDollars
		wantErr string
	}{
		"listed product":           {book: book, product: v1alpha1.ProductH200SXM, want: 3_500_000},
		"default":                  {book: book, product: "NVIDIA L4", want: 1_500_000},
		"spot discount":            {book: book, product: v1alpha1.ProductH100SXM, labels: spot, want: 1_100_000},
		"spot discount on default": {book: book, product: "NVIDIA L4", labels: spot, want: 600_000},
		"first override wins": {
			book: book, product: v1alpha1.ProductB200, labels: labels.Set{v1alpha1.CapacityTypeLabel: "spot", "reserved": "true"}, want: 2_000_000,
		},
		"override price replaces, no discount": {
			book: book, product: v1alpha1.ProductB200, labels: labels.Set{"reserved": "true"}, want: 4_100_000,
		},
		"override discount for unlisted product": {
			book: book, product: v1alpha1.ProductH100SXM, labels: labels.Set{"reserved": "true"}, want: 2_475_000,
		},
		"zero price is a price": {book: free, product: "NVIDIA L4", want: 0},
		"unknown product, no default": {
			book: noDefault, product: "NVIDIA L4", labels: spot,
			wantErr: `product "NVIDIA L4": no price: not in the price book and no default`,
		},
		"empty book": {
			book: v1alpha1.PriceBook{}, product: v1alpha1.ProductH200SXM,
			wantErr: `product "NVIDIA H200 141GB HBM3e": no price: not in the price book and no default`,
		},
		"bad price": {
			book: v1alpha1.PriceBook{Products: []v1alpha1.ProductPrice{{Product: "x", PerGPUHour: "free"}}}, product: "x",
			wantErr: `product "x": price "free": want a decimal dollar amount like "2.75" with at most 6 decimals`,
		},
		"bad default": {
			book: v1alpha1.PriceBook{Default: "cheap"}, product: "x",
			wantErr: `default price: price "cheap": want a decimal dollar amount like "2.75" with at most 6 decimals`,
		},
		"bad override selector": {
			book: v1alpha1.PriceBook{Default: "1", Overrides: []v1alpha1.PriceOverride{{Name: "odd",
				NodeSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Near"}}}}}},
			product: "x", wantErr: `price override "odd": node selector: "Near" is not a valid label selector operator`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := PerGPUHour(tc.book, tc.product, tc.labels)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPerGPUHourNoPriceIsErrNoPrice(t *testing.T) {
	_, err := PerGPUHour(v1alpha1.PriceBook{}, "NVIDIA L4", nil)
	require.ErrorIs(t, err, ErrNoPrice)
	_, err = PerGPUHour(v1alpha1.PriceBook{Default: "cheap"}, "NVIDIA L4", nil)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNoPrice, "a malformed price is not a missing one")
}

func TestApplyDiscount(t *testing.T) {
	tests := map[string]struct {
		price   v1alpha1.MicroDollars
		percent int32
		want    v1alpha1.MicroDollars
	}{
		"none":        {price: 3, percent: 0, want: 3},
		"all":         {price: 3, percent: 100, want: 0},
		"rounds half": {price: 5, percent: 50, want: 3},
		"clamped":     {price: 10, percent: 150, want: 0},
		"negative":    {price: 10, percent: -5, want: 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, applyDiscount(tc.price, tc.percent))
		})
	}
}
