package slices

import (
	"fmt"
	"slices"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// AttrTenant is the tenant a tenant-scoped shared device serves: a tenant of
// the TierPolicy, or OpenTenant for every namespace of no named tenant.
const AttrTenant = DriverName + "/tenant"

// OpenTenant is AttrTenant of the slot that serves namespaces no tenant of
// the policy selects.
const OpenTenant = ""

// tenancyCounter is the one counter of a soft-shared GPU's tenancy set:
// every tenant slot of the GPU consumes all of it.
const tenancyCounter = "tenant"

// TenantSlots are the tenants a GPU of a Shared tier publishes a slot for:
// the policy's tenants allowed the tier, in policy order, then OpenTenant.
// Nil when no tenant is allowed the tier: one shared device then serves
// every namespace and prepare alone keeps tenants apart.
func TenantSlots(policy *v1alpha1.TierPolicy, tier string) []string {
	var slots []string
	for _, t := range policy.Spec.Tenants {
		if slices.Contains(t.AllowedTiers, tier) {
			slots = append(slots, t.Name)
		}
	}
	if slots == nil {
		return nil
	}
	return append(slots, OpenTenant)
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
	for i, tenant := range slots {
		d := *shared.DeepCopy()
		d.Name = tenantDeviceName(index, i, tenant)
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

// tenantDeviceName is gpu-<index>-tenant-<slot>, or gpu-<index>-open for the
// open slot: tenant names can be as long as a device name may be.
func tenantDeviceName(index, slot int, tenant string) string {
	if tenant == OpenTenant {
		return fmt.Sprintf("gpu-%d-open", index)
	}
	return fmt.Sprintf("gpu-%d-tenant-%d", index, slot)
}

// TenantSelector is the CEL selector that keeps a claim to its tenant's
// slots. Devices without AttrTenant (GPUs of tiers no tenant is allowed,
// or not shared) pass, so the selector can be added to any request.
func TenantSelector(tenant string) string {
	attr := CELAttribute(AttrTenant)
	return fmt.Sprintf("!has(%s) || %s == %q", attr, attr, tenant)
}
