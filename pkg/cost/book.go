// Package cost is where a device's price is computed, at publish time and
// at claim time, from the TierPolicy's price book:
//
//   - PerGPUHour: one GPU-hour of a product on a node (the book's entry or
//     default, then the first matching override's own price or discount);
//   - Whole, Shared and MIG: what the devices made from that GPU publish
//     (pkg/slices writes a Price as the costPerHour and
//     costPerComputeUnitHour attributes and reads it back);
//   - Price.Allocation: what one allocation of a device costs per hour,
//     which the planner, the controller's cost metric and the plugin's
//     per-claim usage add up.
//
// It is pure: no API clients, no files, no GPUs. Amounts are integer
// micro-dollars (v1alpha1.MicroDollars) so that CEL selectors compare
// published prices exactly.
package cost

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// ErrNoPrice is returned (wrapped) by PerGPUHour when neither the product
// nor the book's default has a price. A GPU without a price publishes no
// cost attributes rather than a made-up zero.
var ErrNoPrice = errors.New("no price")

// PerGPUHour prices one GPU-hour of the product on a node with the given
// labels. The base price is the product's entry, else the default. The
// first override whose node selector matches then applies: its own price
// for the product replaces the base price outright; otherwise its discount
// (e.g. spot capacity) is taken off the base price, rounded to the nearest
// micro-dollar. An error wrapping ErrNoPrice means no price applies.
func PerGPUHour(book v1alpha1.PriceBook, product string, nodeLabels labels.Set) (v1alpha1.MicroDollars, error) {
	for i := range book.Overrides {
		o := &book.Overrides[i]
		sel, err := metav1.LabelSelectorAsSelector(&o.NodeSelector)
		if err != nil {
			return 0, fmt.Errorf("price override %q: node selector: %w", o.Name, err)
		}
		if !sel.Matches(nodeLabels) {
			continue
		}
		if price, found, err := lookupPrice(o.Products, product); found || err != nil {
			if err != nil {
				return 0, fmt.Errorf("price override %q: %w", o.Name, err)
			}
			return price, nil
		}
		base, err := basePrice(book, product)
		if err != nil {
			return 0, err
		}
		return applyDiscount(base, o.Discount), nil
	}
	return basePrice(book, product)
}

func basePrice(book v1alpha1.PriceBook, product string) (v1alpha1.MicroDollars, error) {
	price, found, err := lookupPrice(book.Products, product)
	if found || err != nil {
		return price, err
	}
	if book.Default == "" {
		return 0, fmt.Errorf("product %q: %w: not in the price book and no default", product, ErrNoPrice)
	}
	price, err = v1alpha1.ParsePrice(book.Default)
	if err != nil {
		return 0, fmt.Errorf("default price: %w", err)
	}
	return price, nil
}

func lookupPrice(prices []v1alpha1.ProductPrice, product string) (v1alpha1.MicroDollars, bool, error) {
	for _, pp := range prices {
		if pp.Product != product {
			continue
		}
		price, err := v1alpha1.ParsePrice(pp.PerGPUHour)
		if err != nil {
			return 0, true, fmt.Errorf("product %q: %w", product, err)
		}
		return price, true, nil
	}
	return 0, false, nil
}

// applyDiscount takes percent (clamped to 0-100) off price, rounding to
// the nearest micro-dollar.
func applyDiscount(price v1alpha1.MicroDollars, percent int32) v1alpha1.MicroDollars {
	percent = max(0, min(100, percent))
	return (price*v1alpha1.MicroDollars(100-percent) + 50) / 100
}
