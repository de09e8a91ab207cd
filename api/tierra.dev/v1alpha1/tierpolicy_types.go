package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Partitioning says how the GPUs of a tier are cut into allocatable devices.
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
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TierPolicySpec   `json:"spec"`
	Status TierPolicyStatus `json:"status,omitempty"`
}

// TierPolicySpec describes tiers, prices and tenants.
type TierPolicySpec struct {
	// Tiers are matched in order: a GPU serves the first tier whose selector
	// it matches, and no tier if none matches.
	Tiers     []Tier    `json:"tiers"`
	PriceBook PriceBook `json:"priceBook,omitempty"`
	Tenants   []Tenant  `json:"tenants,omitempty"`
}

// Tier is one class of service.
type Tier struct {
	// Name is a DNS label; the tier's DeviceClass is <name>.gpu.tierra.dev.
	Name string `json:"name"`
	// GPUs selects the GPUs that serve this tier.
	GPUs GPUSelector `json:"gpus,omitempty"`
	// Partitioning says how those GPUs are published.
	Partitioning Partitioning `json:"partitioning"`
	// Sharing is the tier's default GpuConfig sharing (class-level opaque
	// config). Required for Shared partitioning (MPS or TimeSlicing);
	// Whole and MIG tiers are Exclusive.
	Sharing *GpuSharing `json:"sharing,omitempty"`
}

// GPUSelector selects GPUs by node labels, product and memory. Empty fields
// match everything.
type GPUSelector struct {
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Products are product names as NVML reports them, e.g. "NVIDIA H200 141GB HBM3e".
	Products []string `json:"products,omitempty"`
	// MinMemory is the least GPU memory, a quantity such as "80Gi".
	MinMemory string `json:"minMemory,omitempty"`
}

// PriceBook prices GPU hours. Prices are decimal US dollars per GPU-hour
// ("2.75"); devices publish them as integer micro-dollars per device-hour,
// pro-rated for MIG slices and shares.
type PriceBook struct {
	// Default is the price of a GPU whose product has no entry.
	Default string `json:"default,omitempty"`
	// Products maps product names to their price per GPU-hour.
	Products []ProductPrice `json:"products,omitempty"`
	// Overrides replace prices on nodes matching a label selector (e.g.
	// spot capacity). The first matching override wins.
	Overrides []PriceOverride `json:"overrides,omitempty"`
}

// ProductPrice is the price per GPU-hour of one product.
type ProductPrice struct {
	Product    string `json:"product"`
	PerGPUHour string `json:"perGPUHour"`
}

// PriceOverride replaces prices on matching nodes.
type PriceOverride struct {
	Name         string               `json:"name"`
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`
	// Discount is a percentage (0-100) taken off every matching price.
	Discount int32 `json:"discount,omitempty"`
	// Products, when set, replace the listed prices outright.
	Products []ProductPrice `json:"products,omitempty"`
}

// Tenant is a group of namespaces that may share soft-shared GPUs with each
// other but never with another tenant.
type Tenant struct {
	Name              string               `json:"name"`
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
	// AllowedTiers lists the tier names the tenant may claim.
	AllowedTiers []string `json:"allowedTiers"`
}

// TierPolicyStatus is written by tierra-controller.
type TierPolicyStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	TierCount          int32              `json:"tierCount,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	Tiers              []TierStatus       `json:"tiers,omitempty"`
}

// TierStatus reports one tier's devices and yield.
type TierStatus struct {
	Name             string `json:"name"`
	DevicesPublished int32  `json:"devicesPublished"`
	DevicesAllocated int32  `json:"devicesAllocated"`
	// YieldPercent is allocated GPU capacity over published GPU capacity.
	YieldPercent int32 `json:"yieldPercent"`
}
