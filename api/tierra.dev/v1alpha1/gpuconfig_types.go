package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GpuConfigKind is the kind of the opaque device configuration.
const GpuConfigKind = "GpuConfig"

// SharingStrategy says how a GPU (or MIG slice) serves the claims allocated on it.
//
// +kubebuilder:validation:Enum=Exclusive;TimeSlicing;MPS
type SharingStrategy string

const (
	// SharingExclusive gives the device to one claim: exclusive-process
	// compute mode on a whole GPU, or a dedicated MIG instance.
	SharingExclusive SharingStrategy = "Exclusive"
	// SharingTimeSlicing lets claims of one tenant take turns on the GPU.
	SharingTimeSlicing SharingStrategy = "TimeSlicing"
	// SharingMPS runs claims of one tenant side by side under an MPS control daemon.
	SharingMPS SharingStrategy = "MPS"
)

// TimeSliceInterval is the scheduling time slice for time-sliced GPUs, as
// accepted by `nvidia-smi compute-policy --set-timeslice`.
//
// +kubebuilder:validation:Enum=Default;Short;Medium;Long
type TimeSliceInterval string

const (
	// TimeSliceDefault leaves the driver's default time slice in place.
	TimeSliceDefault TimeSliceInterval = "Default"
	// TimeSliceShort is the shortest time slice: lowest latency, most switching.
	TimeSliceShort TimeSliceInterval = "Short"
	// TimeSliceMedium is a medium time slice.
	TimeSliceMedium TimeSliceInterval = "Medium"
	// TimeSliceLong is the longest time slice: best throughput, worst latency.
	TimeSliceLong TimeSliceInterval = "Long"
)

// GpuConfig is the opaque configuration for driver gpu.tierra.dev, set in a
// DeviceClass (defaults for a tier) or in a ResourceClaim (per claim).
// Claim config overrides class config (see ResolveConfig). It is not a
// stored resource: it travels as raw JSON inside DRA opaque parameters and is
// read with DecodeGpuConfig.
//
// +kubebuilder:object:root=true
type GpuConfig struct {
	metav1.TypeMeta `json:",inline"`
	// Sharing selects and parameterises the sharing strategy. Unset means
	// Exclusive after defaulting.
	// +optional
	Sharing *GpuSharing `json:"sharing,omitempty"`
}

// GpuSharing selects a strategy and holds the parameters of that strategy only.
type GpuSharing struct {
	// Strategy is Exclusive, TimeSlicing or MPS.
	// +required
	Strategy SharingStrategy `json:"strategy"`
	// TimeSlicing parameters; only with strategy TimeSlicing.
	// +optional
	TimeSlicing *TimeSlicingConfig `json:"timeSlicing,omitempty"`
	// MPS parameters; only with strategy MPS.
	// +optional
	MPS *MPSConfig `json:"mps,omitempty"`
}

// TimeSlicingConfig parameterises SharingTimeSlicing.
type TimeSlicingConfig struct {
	// Interval is the time slice; unset means Default.
	// +optional
	Interval TimeSliceInterval `json:"interval,omitempty"`
}

// MPSConfig parameterises SharingMPS.
type MPSConfig struct {
	// DefaultActiveThreadPercentage caps the SMs each client may use (1-100).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	DefaultActiveThreadPercentage *int32 `json:"defaultActiveThreadPercentage,omitempty"`
	// DefaultPinnedDeviceMemoryLimit caps the device memory each client may
	// pin; it must be greater than zero.
	// +optional
	DefaultPinnedDeviceMemoryLimit *resource.Quantity `json:"defaultPinnedDeviceMemoryLimit,omitempty"`
}
