package tierratest

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// PolicyWrapper builds a TierPolicy: MakePolicy().Tier("training",
// v1alpha1.PartitioningWhole).NodeLabel("pool", "train").Price(ProductH200, "3.50").Obj().
type PolicyWrapper struct{ v1alpha1.TierPolicy }

// MakePolicy starts the cluster's policy, named "default".
func MakePolicy() *PolicyWrapper {
	return &PolicyWrapper{v1alpha1.TierPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}}}
}

// Obj returns the policy.
func (w *PolicyWrapper) Obj() *v1alpha1.TierPolicy { return &w.TierPolicy }

// Tier appends a tier; MPS/TimeSlicing sharing is set for Shared tiers with Sharing.
func (w *PolicyWrapper) Tier(name string, p v1alpha1.Partitioning) *PolicyWrapper {
	w.Spec.Tiers = append(w.Spec.Tiers, v1alpha1.Tier{Name: name, Partitioning: p})
	return w
}

// Sharing sets the last tier's sharing strategy.
func (w *PolicyWrapper) Sharing(s v1alpha1.SharingStrategy) *PolicyWrapper {
	w.last().Sharing = &v1alpha1.GpuSharing{Strategy: s}
	return w
}

// NodeLabel restricts the last tier to nodes with the label.
func (w *PolicyWrapper) NodeLabel(key, value string) *PolicyWrapper {
	t := w.last()
	if t.GPUs.NodeSelector == nil {
		t.GPUs.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
	}
	t.GPUs.NodeSelector.MatchLabels[key] = value
	return w
}

// Products restricts the last tier to the products.
func (w *PolicyWrapper) Products(products ...string) *PolicyWrapper {
	w.last().GPUs.Products = append(w.last().GPUs.Products, products...)
	return w
}

// MinMemory restricts the last tier to GPUs with at least that memory.
func (w *PolicyWrapper) MinMemory(q string) *PolicyWrapper {
	w.last().GPUs.MinMemory = q
	return w
}

// Price sets a product's price per GPU-hour in dollars.
func (w *PolicyWrapper) Price(product, dollars string) *PolicyWrapper {
	w.Spec.PriceBook.Products = append(w.Spec.PriceBook.Products, v1alpha1.ProductPrice{Product: product, PerGPUHour: dollars})
	return w
}

// DefaultPrice sets the price of products without an entry.
func (w *PolicyWrapper) DefaultPrice(dollars string) *PolicyWrapper {
	w.Spec.PriceBook.Default = dollars
	return w
}

func (w *PolicyWrapper) last() *v1alpha1.Tier {
	if len(w.Spec.Tiers) == 0 {
		panic("PolicyWrapper: call Tier first")
	}
	return &w.Spec.Tiers[len(w.Spec.Tiers)-1]
}

// StandardPolicy is the three-tier policy the tests share: training gets
// whole GPUs on nodes labelled tierra.dev/pool=training, inference gets MIG
// slices of H200/B200/A100, dev time-slices everything else. H200 $3.50,
// B200 $5.00, A100 $1.20, L4 $0.80 per GPU-hour.
func StandardPolicy() *v1alpha1.TierPolicy {
	return MakePolicy().
		Tier(v1alpha1.TierTraining, v1alpha1.PartitioningWhole).NodeLabel("tierra.dev/pool", "training").
		Tier(v1alpha1.TierInference, v1alpha1.PartitioningMIG).Products(ProductH200, ProductB200, ProductA100).
		Tier(v1alpha1.TierDev, v1alpha1.PartitioningShared).Sharing(v1alpha1.SharingTimeSlicing).
		Price(ProductH200, "3.50").Price(ProductB200, "5").Price(ProductA100, "1.20").Price(ProductL4, "0.80").
		Obj()
}

// DefaultPolicySharing is v1alpha1.DefaultTierPolicy with the named tier
// shared under strategy (e.g. the dev tier under MPS).
func DefaultPolicySharing(tier string, strategy v1alpha1.SharingStrategy) *v1alpha1.TierPolicy {
	p := v1alpha1.DefaultTierPolicy()
	for i := range p.Spec.Tiers {
		if p.Spec.Tiers[i].Name == tier {
			p.Spec.Tiers[i].Sharing = &v1alpha1.GpuSharing{Strategy: strategy}
		}
	}
	return p
}
