// Package tenancy is Tierra's one definition of a tenant, used by admission
// (the chart's CEL mirrors Resolve), publishing (a tenant slot per tenant
// of a shared tier) and prepare alike, and the co-location rule: a GPU that
// holds a soft-shared (time-slicing, MPS) claim of one tenant serves no
// other tenant's claim, in any mode, until those claims end.
// Hardware-isolated modes (exclusive, MIG) may put different tenants on one
// physical GPU. It is pure.
package tenancy

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// Open is the tenant of every namespace that no tenant of the policy
// selects: together they are one tenant, the policy's open tenant, and may
// soft-share GPUs with each other. It is not a valid tenant name, so no
// namespace can pass for a named tenant by its name alone, and no named
// tenant can be the open one.
const Open = ""

// Resolve returns the tenant of a namespace from its labels: the first
// tenant of the policy whose non-empty namespaceSelector matches them, else
// Open. A namespace's name never makes it a tenant. A nil policy has no
// tenants.
func Resolve(policy *v1alpha1.TierPolicy, nsLabels map[string]string) (string, error) {
	if policy == nil {
		return Open, nil
	}
	for _, t := range policy.Spec.Tenants {
		sel, err := metav1.LabelSelectorAsSelector(&t.NamespaceSelector)
		if err != nil {
			return "", fmt.Errorf("tenant %q: namespaceSelector: %w", t.Name, err)
		}
		if !sel.Empty() && sel.Matches(labels.Set(nsLabels)) {
			return t.Name, nil
		}
	}
	return Open, nil
}

// Allowed reports whether tenant may claim devices of tier. A named tenant
// may claim its allowedTiers, and a tenant the policy does not name none;
// the open tenant may claim spec.openTenant.allowedTiers, or every tier when
// the policy leaves openTenant unset. A nil policy allows everything.
func Allowed(policy *v1alpha1.TierPolicy, tenant, tier string) bool {
	if policy == nil {
		return true
	}
	if tenant == Open {
		open := policy.Spec.OpenTenant
		return open == nil || slices.Contains(open.AllowedTiers, tier)
	}
	for _, t := range policy.Spec.Tenants {
		if t.Name == tenant {
			return slices.Contains(t.AllowedTiers, tier)
		}
	}
	return false
}

// Display names a tenant in messages: the open tenant has no name.
func Display(tenant string) string {
	if tenant == Open {
		return "(open: namespaces of no tenant)"
	}
	return tenant
}
