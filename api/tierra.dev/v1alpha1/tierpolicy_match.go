package v1alpha1

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

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
