package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Partitioning says how the GPUs of a tier are cut into allocatable devices.
//
// +kubebuilder:validation:Enum=Whole;MIG;Shared
type Partitioning string

const (
	// PartitioningWhole publishes each GPU as one exclusive device.
	PartitioningWhole Partitioning = "Whole"
	// PartitioningMIG publishes each GPU's MIG placements as partitionable
	// devices; the plugin creates the instance at prepare time.
	PartitioningMIG Partitioning = "MIG"
	// PartitioningShared publishes each GPU once with
	// allowMultipleAllocations and consumable memory / compute capacity;
	// claims of one tenant share it through MPS or time-slicing.
	PartitioningShared Partitioning = "Shared"
)

// TierPolicyKind is the kind of the tier policy CRD.
const TierPolicyKind = "TierPolicy"

// Well-known tier names. A TierPolicy may define other tiers as well; each
// tier NAME renders the DeviceClass NAME.gpu.tierra.dev.
const (
	TierTraining  = "training"
	TierInference = "inference"
	TierDev       = "dev"
)

// TierPolicy is the admin's single source of truth: the tiers, which GPUs
// serve which tier and how, the price book and the tenants. There is one per
// cluster, conventionally named "default".
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Tiers",type=integer,JSONPath=".status.tierCount"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type TierPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TierPolicySpec `json:"spec"`
	// +optional
	Status TierPolicyStatus `json:"status,omitempty"`
}

// TierPolicyList is a list of TierPolicy objects.
//
// +kubebuilder:object:root=true
type TierPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TierPolicy `json:"items"`
}

// TierPolicySpec describes tiers, prices and tenants. The CEL rules below
// mirror what Validate checks across fields, so the apiserver refuses what
// the controller would report in its Ready condition.
//
// +kubebuilder:validation:XValidation:rule=`!has(self.tenants) || self.tenants.all(t, t.allowedTiers.all(a, self.tiers.exists(x, x.name == a)))`,message=`every tenant's allowedTiers must name tiers defined in spec.tiers`,fieldPath=`.tenants`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.openTenant) || !has(self.openTenant.allowedTiers) || self.openTenant.allowedTiers.all(a, self.tiers.exists(x, x.name == a))`,message=`allowedTiers must name tiers defined in spec.tiers`,fieldPath=`.openTenant.allowedTiers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`self.tiers.all(a, !has(a.extendedResourceName) || self.tiers.filter(b, has(b.extendedResourceName) && b.extendedResourceName == a.extendedResourceName).size() == 1)`,message=`two tiers name the same extendedResourceName: each extended resource serves one tier class`,fieldPath=`.tiers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.nvidiaGPUTier) || self.tiers.exists(x, x.name == self.nvidiaGPUTier)`,message=`nvidiaGPUTier must name a tier defined in spec.tiers`,fieldPath=`.nvidiaGPUTier`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.nvidiaGPUTier) || self.tiers.all(t, t.name == self.nvidiaGPUTier || !has(t.extendedResourceName) || t.extendedResourceName != 'nvidia.com/gpu')`,messageExpression=`'another tier names nvidia.com/gpu, which nvidiaGPUTier maps to tier ' + self.nvidiaGPUTier`,fieldPath=`.tiers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.nvidiaGPUTier) || self.tiers.all(t, t.name != self.nvidiaGPUTier || !has(t.extendedResourceName) || t.extendedResourceName == 'nvidia.com/gpu')`,messageExpression=`'tier ' + self.nvidiaGPUTier + ' already names another extendedResourceName: a tier class serves one extended resource'`,fieldPath=`.nvidiaGPUTier`,reason=FieldValueInvalid
type TierPolicySpec struct {
	// Tiers are matched in order: a GPU serves the first tier whose selector
	// it matches, and no tier if none matches. Names are unique.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Tiers []Tier `json:"tiers"`
	// PriceBook prices GPU hours; devices publish the result as cost attributes.
	// +optional
	PriceBook PriceBook `json:"priceBook,omitempty"`
	// Tenants group namespaces and say which tiers they may claim.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=name
	Tenants []Tenant `json:"tenants,omitempty"`
	// OpenTenant is what the open tenant may claim: every namespace that no
	// tenant's namespaceSelector selects belongs to it (see Tenant). Unset,
	// the open tenant may claim every tier, so policies written before this
	// field keep working; set, it may claim only its allowedTiers (an empty
	// list allows no tier). Admission, publishing and prepare all apply it:
	// a claim in such a namespace is refused a tier class it is not allowed,
	// kept by its selectors off every other tier's devices whatever its
	// class, and refused such a device at prepare.
	// +optional
	OpenTenant *OpenTenant `json:"openTenant,omitempty"`
	// Health classifies GPU health events (XIDs, double-bit ECC, lost GPUs)
	// into device taints and says when they clear (see HealthPolicy).
	// Unset, the defaults apply.
	// +optional
	Health *HealthPolicy `json:"health,omitempty"`
	// NVIDIAGPUTier names the tier that serves pods written for NVIDIA's
	// device plugin: its DeviceClass gets extendedResourceName
	// nvidia.com/gpu, so `resources.limits: {nvidia.com/gpu: 4}` is four
	// devices of that tier, allocated by the scheduler (DRAExtendedResource,
	// KEP-5004) and prepared by Tierra's plugin like any claim. It is the
	// migration path off the device plugin: unset, nvidia.com/gpu is left
	// to whatever else serves it. The tier must not name another
	// extendedResourceName, and no other tier may name nvidia.com/gpu.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	NVIDIAGPUTier string `json:"nvidiaGPUTier,omitempty"`
}

// NVIDIAGPUResource is the extended resource NVIDIA's device plugin
// advertises, which spec.nvidiaGPUTier maps to a tier.
const NVIDIAGPUResource = "nvidia.com/gpu"

// OpenTenant is the policy's rule for namespaces of no tenant.
type OpenTenant struct {
	// AllowedTiers lists the tier names the open tenant may claim; each must
	// be a tier defined in spec.tiers. Empty (or unset) allows none.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	AllowedTiers []string `json:"allowedTiers,omitempty"`
}

// Tier is one class of service.
//
// +kubebuilder:validation:XValidation:rule=`!(self.name in ['gpu', 'mig'])`,messageExpression=`'tier name ' + self.name + ' is reserved: ' + self.name + '.gpu.tierra.dev is a plain class of the driver'`,fieldPath=`.name`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.sharing) || (self.partitioning == 'Shared' ? self.sharing.strategy in ['MPS', 'TimeSlicing'] : self.sharing.strategy == 'Exclusive')`,messageExpression=`self.partitioning + ' partitioning needs strategy ' + (self.partitioning == 'Shared' ? '"MPS" or "TimeSlicing"' : '"Exclusive"') + ', not ' + self.sharing.strategy`,fieldPath=`.sharing.strategy`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.sharing) || !has(self.sharing.timeSlicing) || self.sharing.strategy == 'TimeSlicing'`,message=`only allowed when strategy is "TimeSlicing"`,fieldPath=`.sharing.timeSlicing`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`!has(self.sharing) || !has(self.sharing.mps) || self.sharing.strategy == 'MPS'`,message=`only allowed when strategy is "MPS"`,fieldPath=`.sharing.mps`,reason=FieldValueForbidden
type Tier struct {
	// Name is a DNS label; the tier's DeviceClass is <name>.gpu.tierra.dev.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// GPUs selects the GPUs that serve this tier; empty selects every GPU.
	// +optional
	GPUs GPUSelector `json:"gpus,omitempty"`
	// Partitioning says how those GPUs are published: Whole, MIG or Shared.
	// +required
	Partitioning Partitioning `json:"partitioning"`
	// Sharing is the tier's default GpuConfig sharing (class-level opaque
	// config). Required for Shared partitioning (MPS or TimeSlicing);
	// Whole and MIG tiers are Exclusive. Defaulted from the partitioning:
	// Shared tiers time-slice, Whole and MIG tiers are Exclusive.
	// +optional
	Sharing *GpuSharing `json:"sharing,omitempty"`
	// ExtendedResourceName, e.g. "tierra.dev/training-gpu", lets pods ask
	// for this tier's devices as an extended resource
	// (`resources.limits: {tierra.dev/training-gpu: 2}`) instead of a
	// ResourceClaim: the controller sets it as the tier DeviceClass's
	// spec.extendedResourceName. Each unit is one device of the tier (a
	// whole GPU, a MIG slice or a share, per the partitioning). Unique
	// among the tiers; the format is upstream's extended resource name
	// (domain-prefixed, no kubernetes.io domain, no requests. prefix).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$`
	// +kubebuilder:validation:XValidation:rule=`!self.contains('kubernetes.io/')`,message=`must not have "kubernetes.io/" domain`
	// +kubebuilder:validation:XValidation:rule=`!self.startsWith('requests.')`,message=`must not have "requests." prefix`
	ExtendedResourceName string `json:"extendedResourceName,omitempty"`
}

// GPUSelector selects GPUs by node labels, product and memory. Empty fields
// match everything.
type GPUSelector struct {
	// NodeSelector selects the nodes by label.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Products are product names as NVML reports them, e.g. "NVIDIA H200 141GB HBM3e".
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	Products []string `json:"products,omitempty"`
	// MinMemory is the least GPU memory, a quantity such as "80Gi".
	// +optional
	// +kubebuilder:validation:Pattern=`^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`!isQuantity(self) || !quantity(self).isLessThan(quantity('0'))`,message=`must not be negative`
	MinMemory string `json:"minMemory,omitempty"`
}

// PriceBook prices GPU hours. Prices are decimal US dollars per GPU-hour
// ("2.75"); devices publish them as integer micro-dollars per device-hour,
// pro-rated for MIG slices and shares.
type PriceBook struct {
	// Default is the price of a GPU whose product has no entry.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`self.matches('^0*([0-9]{1,9}|1000000000)([.][0-9]*)?$')`,message=`out of range (at most 1000000000 dollars)`
	Default string `json:"default,omitempty"`
	// Products maps product names to their price per GPU-hour.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=map
	// +listMapKey=product
	Products []ProductPrice `json:"products,omitempty"`
	// Overrides replace prices on nodes matching a label selector (e.g.
	// spot capacity). The first matching override wins.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Overrides []PriceOverride `json:"overrides,omitempty"`
}

// ProductPrice is the price per GPU-hour of one product.
type ProductPrice struct {
	// Product is the product name as NVML reports it.
	// +required
	// +kubebuilder:validation:MinLength=1
	Product string `json:"product"`
	// PerGPUHour is a decimal dollar amount such as "2.75".
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`self.matches('^0*([0-9]{1,9}|1000000000)([.][0-9]*)?$')`,message=`out of range (at most 1000000000 dollars)`
	PerGPUHour string `json:"perGPUHour"`
}

// PriceOverride replaces prices on matching nodes.
type PriceOverride struct {
	// Name is a DNS label naming the override.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// NodeSelector selects the nodes the override applies to.
	// +required
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`
	// Discount is a percentage (0-100) taken off the price of every GPU on
	// a matching node whose product is not listed in Products.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Discount int32 `json:"discount,omitempty"`
	// Products, when set, replace the listed prices outright (no discount).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=map
	// +listMapKey=product
	Products []ProductPrice `json:"products,omitempty"`
}

// Tenant is a group of namespaces that may share soft-shared GPUs with each
// other but never with another tenant.
type Tenant struct {
	// Name is a DNS label naming the tenant.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// NamespaceSelector selects the tenant's namespaces by label.
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
	// AllowedTiers lists the tier names the tenant may claim; each must be
	// a tier defined in spec.tiers.
	// +required
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	AllowedTiers []string `json:"allowedTiers"`
}

// TierPolicyStatus is written by tierra-controller.
type TierPolicyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// TierCount is the number of tiers rendered into DeviceClasses.
	// +optional
	TierCount int32 `json:"tierCount,omitempty"`
	// Conditions include Ready, false with the validation errors when the
	// spec does not validate.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Tiers reports each tier's devices and yield.
	// +optional
	// +listType=map
	// +listMapKey=name
	Tiers []TierStatus `json:"tiers,omitempty"`
}

// TierStatus reports one tier's devices and yield.
type TierStatus struct {
	// Name is the tier's name.
	Name string `json:"name"`
	// DevicesPublished counts the tier's devices in ResourceSlices.
	DevicesPublished int32 `json:"devicesPublished"`
	// DevicesAllocated counts the tier's devices allocated to claims.
	DevicesAllocated int32 `json:"devicesAllocated"`
	// GPUs counts the physical GPUs serving the tier: a GPU published whole,
	// as MIG slices or as a shared device counts once.
	// +optional
	GPUs int32 `json:"gpus,omitempty"`
	// AllocatedMilliGPUs is the allocated GPU capacity in thousandths of a
	// GPU: a whole GPU is 1000, a MIG slice its memory slices over the GPU's,
	// a share of a shared GPU its consumed compute.
	// +optional
	AllocatedMilliGPUs int64 `json:"allocatedMilliGPUs,omitempty"`
	// YieldPercent is allocated GPU capacity over published GPU capacity:
	// AllocatedMilliGPUs over GPUs x 1000.
	YieldPercent int32 `json:"yieldPercent"`
}
