package slices

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// The helpers in this file are the minimum pkg/slices needs from the
// TierPolicy. They move to the API package (GPUSelector.Matches,
// TierPolicy.TierFor, PriceBook.PricePerGPUHour) once it has them.

// tierFor returns the first tier of the policy whose selector matches the
// GPU on the node, or nil when none does.
func tierFor(policy *v1alpha1.TierPolicy, node Node, gpu inventory.GPU) (*v1alpha1.Tier, error) {
	for i := range policy.Spec.Tiers {
		tier := &policy.Spec.Tiers[i]
		ok, err := selectorMatches(tier.GPUs, node.Labels, gpu)
		if err != nil {
			return nil, fmt.Errorf("tier %q: %w", tier.Name, err)
		}
		if ok {
			return tier, nil
		}
	}
	return nil, nil
}

func selectorMatches(sel v1alpha1.GPUSelector, nodeLabels map[string]string, gpu inventory.GPU) (bool, error) {
	if sel.NodeSelector != nil {
		ok, err := labelsMatch(sel.NodeSelector, nodeLabels)
		if err != nil || !ok {
			return false, err
		}
	}
	if len(sel.Products) > 0 && !slices.Contains(sel.Products, gpu.ProductName) {
		return false, nil
	}
	if sel.MinMemory != "" {
		q, err := resource.ParseQuantity(sel.MinMemory)
		if err != nil {
			return false, fmt.Errorf("minMemory %q: %w", sel.MinMemory, err)
		}
		if gpu.MemoryBytes < uint64(q.Value()) {
			return false, nil
		}
	}
	return true, nil
}

func labelsMatch(ls *metav1.LabelSelector, nodeLabels map[string]string) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return false, fmt.Errorf("node selector: %w", err)
	}
	return sel.Matches(labels.Set(nodeLabels)), nil
}

// pricePerGPUHour returns the price of one hour of the whole GPU on the
// node: the first matching override (a replacement price, else a discount
// on the book price), else the product's price, else the book default.
func pricePerGPUHour(book v1alpha1.PriceBook, nodeLabels map[string]string, product string) (v1alpha1.MicroDollars, error) {
	price, err := productPrice(book.Products, product, book.Default)
	if err != nil {
		return 0, err
	}
	for _, o := range book.Overrides {
		ok, err := labelsMatch(&o.NodeSelector, nodeLabels)
		if err != nil {
			return 0, fmt.Errorf("price override %q: %w", o.Name, err)
		}
		if !ok {
			continue
		}
		if price, err = productPrice(o.Products, product, price.String()); err != nil {
			return 0, fmt.Errorf("price override %q: %w", o.Name, err)
		}
		return price * v1alpha1.MicroDollars(100-o.Discount) / 100, nil
	}
	return price, nil
}

func productPrice(prices []v1alpha1.ProductPrice, product, fallback string) (v1alpha1.MicroDollars, error) {
	s := fallback
	if i := slices.IndexFunc(prices, func(p v1alpha1.ProductPrice) bool { return p.Product == product }); i >= 0 {
		s = prices[i].PerGPUHour
	}
	if s == "" {
		return 0, nil
	}
	return v1alpha1.ParsePrice(s)
}
