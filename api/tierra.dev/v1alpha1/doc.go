// Package v1alpha1 is the tierra.dev/v1alpha1 API: GpuConfig, the opaque
// device configuration carried in DeviceClasses and ResourceClaims for the
// gpu.tierra.dev driver, and TierPolicy, the cluster-scoped CRD an admin
// writes once to describe tiers, prices and tenants.
//
// +kubebuilder:object:generate=true
// +groupName=tierra.dev
package v1alpha1

const (
	// GroupName is the API group of every Tierra type.
	GroupName = "tierra.dev"
	// Version is this package's API version.
	Version = "v1alpha1"
	// DriverName is the DRA driver name Tierra registers and publishes under.
	DriverName = "gpu.tierra.dev"
)
