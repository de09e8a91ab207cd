package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels the example policy reads. Admins label nodes and namespaces with
// them; nothing else in Tierra depends on them.
const (
	// NodeTierLabel on a node steers its GPUs to a tier ("inference", "dev").
	NodeTierLabel = "tierra.dev/tier"
	// CapacityTypeLabel on a node marks spot capacity ("spot").
	CapacityTypeLabel = "tierra.dev/capacity-type"
	// TenantLabel on a namespace names its tenant.
	TenantLabel = "tierra.dev/tenant"
)

// Product names as NVML reports them, for the example policy and tests.
const (
	ProductA100SXM80GB = "NVIDIA A100-SXM4-80GB"
	ProductH100SXM     = "NVIDIA H100 80GB HBM3"
	ProductH200SXM     = "NVIDIA H200 141GB HBM3e"
	ProductB200        = "NVIDIA B200 180GB HBM3e"
)

// DefaultTierPolicy returns an example policy, named "default", for demos
// and tests:
//
//   - training: Whole H100/H200/B200-class GPUs with at least 80 GB, on nodes
//     not labelled for another tier;
//   - inference: MIG on nodes labelled tierra.dev/tier=inference;
//   - dev: Shared time-slicing on every other GPU.
//
// It prices GPUs by product, discounts spot nodes by 60%, and defines two
// tenants. The minimum memory is "80G" (decimal), not "80Gi": a real H100
// 80GB reports about 79.6 GiB. The result is defaulted and validates clean.
func DefaultTierPolicy() *TierPolicy {
	p := &TierPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: SchemeGroupVersion.String(), Kind: TierPolicyKind},
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: TierPolicySpec{
			Tiers: []Tier{{
				Name:         TierTraining,
				Partitioning: PartitioningWhole,
				GPUs: GPUSelector{
					NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: NodeTierLabel, Operator: metav1.LabelSelectorOpNotIn,
						Values: []string{TierInference, TierDev},
					}}},
					Products:  []string{ProductH100SXM, ProductH200SXM, ProductB200},
					MinMemory: "80G",
				},
			}, {
				Name:         TierInference,
				Partitioning: PartitioningMIG,
				GPUs: GPUSelector{NodeSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{NodeTierLabel: TierInference},
				}},
			}, {
				Name:         TierDev,
				Partitioning: PartitioningShared,
			}},
			PriceBook: PriceBook{
				Default: "1.50",
				Products: []ProductPrice{
					{Product: ProductA100SXM80GB, PerGPUHour: "1.80"},
					{Product: ProductH100SXM, PerGPUHour: "2.75"},
					{Product: ProductH200SXM, PerGPUHour: "3.50"},
					{Product: ProductB200, PerGPUHour: "5.00"},
				},
				Overrides: []PriceOverride{{
					Name:         "spot",
					NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{CapacityTypeLabel: "spot"}},
					Discount:     60,
				}},
			},
			Tenants: []Tenant{{
				Name:              "research",
				NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{TenantLabel: "research"}},
				AllowedTiers:      []string{TierTraining, TierInference, TierDev},
			}, {
				Name:              "product",
				NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{TenantLabel: "product"}},
				AllowedTiers:      []string{TierInference, TierDev},
			}},
		},
	}
	p.Default()
	return p
}
