// Package tenancy resolves a claim's tenant from the TierPolicy and enforces
// the co-location rule: a soft-shared GPU (time-slicing, MPS) serves claims
// of one tenant at a time. Hardware-isolated modes (exclusive, MIG) may put
// different tenants on one physical GPU. It is pure.
package tenancy

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// ErrCrossTenant: a soft-shared GPU already serves another tenant.
var ErrCrossTenant = errors.New("soft-shared GPU serves another tenant")

// Resolve returns the tenant of a namespace: the first tenant of the policy
// whose namespaceSelector matches the namespace's labels, else the
// namespace's own name (every namespace is a tenant of its own by default).
func Resolve(policy *v1alpha1.TierPolicy, namespace string, nsLabels map[string]string) (string, error) {
	if policy == nil {
		return namespace, nil
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
	return namespace, nil
}

// Holder is a claim that holds a soft-shared GPU now.
type Holder struct {
	// Claim is "namespace/name".
	Claim  string
	Tenant string
}

// CheckColocation refuses a claim of tenant on a soft-shared GPU that one
// of holders, of another tenant, already uses. The error names both tenants,
// the holding claim and the GPU.
func CheckColocation(gpu, claim, tenant string, holders []Holder) error {
	for _, h := range holders {
		if h.Tenant != tenant {
			return fmt.Errorf("claim %s of tenant %q cannot share GPU %s with claim %s of tenant %q: %w",
				claim, tenant, gpu, h.Claim, h.Tenant, ErrCrossTenant)
		}
	}
	return nil
}
