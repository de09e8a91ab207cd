package slices

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

// AttrTenant is the tenant a tenant-scoped shared device serves: a tenant of
// the TierPolicy, or OpenTenant for every namespace of no named tenant.
const AttrTenant = DriverName + "/tenant"

// OpenTenant is AttrTenant of the slot that serves namespaces no tenant of
// the policy selects: the policy's open tenant.
const OpenTenant = tenancy.Open

// tenancyCounter is the one counter of a soft-shared GPU's tenancy set:
// every tenant slot of the GPU consumes all of it.
const tenancyCounter = "tenant"

// TenantSlots are the tenants a GPU of a Shared tier publishes a slot for:
// the policy's tenants allowed the tier (tenancy.Allowed), in policy order,
// then OpenTenant when the open tenant is allowed it too. Nil when no named
// tenant is allowed the tier: one shared device then serves the open
// tenant alone, and admission and prepare keep everyone else off it.
func TenantSlots(policy *v1alpha1.TierPolicy, tier string) []string {
	var slots []string
	for _, t := range policy.Spec.Tenants {
		if tenancy.Allowed(policy, t.Name, tier) {
			slots = append(slots, t.Name)
		}
	}
	if slots == nil {
		return nil
	}
	if tenancy.Allowed(policy, OpenTenant, tier) {
		slots = append(slots, OpenTenant)
	}
	return slots
}

// tenantDevices splits a soft-shared GPU into one device per tenant slot so
// that the scheduler itself never puts two tenants on it: each slot is the
// whole shared device (same capacity, attributes and GPU) plus AttrTenant,
// and consumes the GPU's single tenancy counter. The allocator charges an
// allow-multiple device's counters once, when its first claim lands, so
// while any claim holds one slot the other slots of that GPU do not fit;
// claims of the slot's own tenant keep sharing it by capacity. Which slot a
// claim may take is added to it at admission (the chart's tenancy
// MutatingAdmissionPolicy selects the namespace's tenant).
func tenantDevices(shared resourceapi.Device, index int, slots []string) ([]resourceapi.Device, resourceapi.CounterSet) {
	set := resourceapi.CounterSet{
		Name:     tenancyCounterSet(index),
		Counters: map[string]resourceapi.Counter{tenancyCounter: {Value: *resource.NewQuantity(1, resource.DecimalSI)}},
	}
	devices := make([]resourceapi.Device, 0, len(slots))
	for _, tenant := range slots {
		d := *shared.DeepCopy()
		d.Name = TenantDeviceName(index, tenant)
		d.Attributes[AttrTenant] = resourceapi.DeviceAttribute{StringValue: ptr.To(tenant)}
		d.ConsumesCounters = []resourceapi.DeviceCounterConsumption{{
			CounterSet: set.Name,
			Counters:   map[string]resourceapi.Counter{tenancyCounter: {Value: *resource.NewQuantity(1, resource.DecimalSI)}},
		}}
		devices = append(devices, d)
	}
	return devices, set
}

func tenancyCounterSet(index int) string { return fmt.Sprintf("gpu-%d-tenancy", index) }

// TenantDeviceName names GPU index's slot of tenant: gpu-<index>-open for
// the open tenant, else gpu-<index>-tenant-<tenant>. It derives from the
// tenant's name alone, so editing the policy's tenant list (reordering it,
// adding or removing other tenants) never moves a tenant's claims onto a
// slot that now names another tenant. A name over the API's device-name
// limit (a DNS label of 63) keeps as much of the tenant's name as fits and
// ends in a hash of the whole name, so it stays unique and stable.
func TenantDeviceName(index int, tenant string) string {
	if tenant == OpenTenant {
		return fmt.Sprintf("gpu-%d-open", index)
	}
	name := fmt.Sprintf("gpu-%d-tenant-%s", index, tenant)
	if len(name) <= validation.DNS1123LabelMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(tenant))
	suffix := "-" + hex.EncodeToString(sum[:])[:slotHashLength]
	return strings.TrimRight(name[:validation.DNS1123LabelMaxLength-len(suffix)], "-") + suffix
}

// slotHashLength is how many hex digits of the tenant name's SHA-256 end a
// shortened slot name.
const slotHashLength = 10

// TenantSelector is the CEL selector that keeps a claim to its tenant's
// slots. Devices without AttrTenant (GPUs of tiers no tenant is allowed,
// or not shared) pass, so the selector can be added to any request.
func TenantSelector(tenant string) string {
	attr := CELAttribute(AttrTenant)
	return fmt.Sprintf("!has(%s) || %s == %q", attr, attr, tenant)
}

// TierSelector is the CEL selector that keeps a claim to devices of the
// given tiers. Devices without AttrTier (other drivers') pass, so it can be
// added to any request, of any class.
func TierSelector(tiers []string) string {
	attr := CELAttribute(AttrTier)
	quoted := make([]string, len(tiers))
	for i, t := range tiers {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	return fmt.Sprintf("!has(%s) || %s in [%s]", attr, attr, strings.Join(quoted, ", "))
}

// AdmissionSelectors are the CEL selectors the chart's tenancy
// MutatingAdmissionPolicy (templates/map-tenant-slots.yaml) adds to every
// request and firstAvailable subrequest of a new ResourceClaim, whatever its
// class, in a namespace of tenant: TenantSelector(tenant), then, when the
// tenant is restricted to a list of tiers (a named tenant, or the open
// tenant of a policy that sets openTenant), TierSelector of the policy's
// tiers that tenancy.Allowed lets it claim, in policy order. The deploy
// tests hold the chart's CEL to this.
func AdmissionSelectors(policy *v1alpha1.TierPolicy, tenant string) []string {
	sels := []string{TenantSelector(tenant)}
	if policy == nil || (tenant == OpenTenant && policy.Spec.OpenTenant == nil) {
		return sels
	}
	allowed := []string{}
	for _, t := range policy.Spec.Tiers {
		if tenancy.Allowed(policy, tenant, t.Name) {
			allowed = append(allowed, t.Name)
		}
	}
	return append(sels, TierSelector(allowed))
}
