package v1alpha1

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ErrNoPrice is returned (wrapped) by PriceBook.PricePerGPUHour when neither
// the product nor the book's default has a price.
var ErrNoPrice = errors.New("no price")

// Matches reports whether a GPU with the given product name and total memory
// on a node with the given labels is selected. Empty fields match
// everything. An error means the selector is invalid (Validate reports it
// too).
func (s GPUSelector) Matches(product string, memoryBytes uint64, nodeLabels labels.Set) (bool, error) {
	if len(s.Products) > 0 && !slices.Contains(s.Products, product) {
		return false, nil
	}
	if s.MinMemory != "" {
		q, err := resource.ParseQuantity(s.MinMemory)
		if err != nil {
			return false, fmt.Errorf("minMemory %q: %w", s.MinMemory, err)
		}
		if least := q.Value(); least > 0 && memoryBytes < uint64(least) {
			return false, nil
		}
	}
	return selectorMatches(s.NodeSelector, nodeLabels)
}

// selectorMatches treats a nil selector as matching everything (unlike
// metav1.LabelSelectorAsSelector, which returns labels.Nothing for nil).
func selectorMatches(sel *metav1.LabelSelector, set labels.Set) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, fmt.Errorf("node selector: %w", err)
	}
	return s.Matches(set), nil
}

// TierFor returns the first tier, in policy order, whose selector matches
// the GPU, or nil if none does.
func (p *TierPolicy) TierFor(product string, memoryBytes uint64, nodeLabels labels.Set) (*Tier, error) {
	for i := range p.Spec.Tiers {
		t := &p.Spec.Tiers[i]
		ok, err := t.GPUs.Matches(product, memoryBytes, nodeLabels)
		if err != nil {
			return nil, fmt.Errorf("tier %q: gpus: %w", t.Name, err)
		}
		if ok {
			return t, nil
		}
	}
	return nil, nil
}

// PricePerGPUHour prices one GPU-hour of the product on a node with the
// given labels. The base price is the product's entry, else the default.
// The first override whose node selector matches then applies: its own
// price for the product replaces the base price outright; otherwise its
// discount is taken off the base price (rounded to the nearest
// micro-dollar). An error wrapping ErrNoPrice means no price applies.
func (b PriceBook) PricePerGPUHour(product string, nodeLabels labels.Set) (MicroDollars, error) {
	for i := range b.Overrides {
		o := &b.Overrides[i]
		ok, err := selectorMatches(&o.NodeSelector, nodeLabels)
		if err != nil {
			return 0, fmt.Errorf("price override %q: %w", o.Name, err)
		}
		if !ok {
			continue
		}
		if price, found, err := lookupPrice(o.Products, product); found || err != nil {
			if err != nil {
				return 0, fmt.Errorf("price override %q: %w", o.Name, err)
			}
			return price, nil
		}
		base, err := b.basePrice(product)
		if err != nil {
			return 0, err
		}
		return applyDiscount(base, o.Discount), nil
	}
	return b.basePrice(product)
}

func (b PriceBook) basePrice(product string) (MicroDollars, error) {
	price, found, err := lookupPrice(b.Products, product)
	if found || err != nil {
		return price, err
	}
	if b.Default == "" {
		return 0, fmt.Errorf("product %q: %w: not in the price book and no default", product, ErrNoPrice)
	}
	price, err = ParsePrice(b.Default)
	if err != nil {
		return 0, fmt.Errorf("default price: %w", err)
	}
	return price, nil
}

func lookupPrice(prices []ProductPrice, product string) (MicroDollars, bool, error) {
	for _, pp := range prices {
		if pp.Product != product {
			continue
		}
		price, err := ParsePrice(pp.PerGPUHour)
		if err != nil {
			return 0, true, fmt.Errorf("product %q: %w", product, err)
		}
		return price, true, nil
	}
	return 0, false, nil
}

// applyDiscount takes percent (clamped to 0-100) off price, rounding to
// the nearest micro-dollar.
func applyDiscount(price MicroDollars, percent int32) MicroDollars {
	percent = max(0, min(100, percent))
	return (price*MicroDollars(100-percent) + 50) / 100
}
