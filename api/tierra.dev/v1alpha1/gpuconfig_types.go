package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GpuConfigKind is the kind of the opaque device configuration.
const GpuConfigKind = "GpuConfig"

// SharingStrategy says how a GPU (or MIG slice) serves the claims allocated on it.
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
type TimeSliceInterval string

const (
	TimeSliceDefault TimeSliceInterval = "Default"
	TimeSliceShort   TimeSliceInterval = "Short"
	TimeSliceMedium  TimeSliceInterval = "Medium"
	TimeSliceLong    TimeSliceInterval = "Long"
)

// GpuConfig is the opaque configuration for driver gpu.tierra.dev, set in a
// DeviceClass (defaults for a tier) or in a ResourceClaim (per claim).
// Claim config overrides class config.
//
// +kubebuilder:object:root=true
type GpuConfig struct {
	metav1.TypeMeta `json:",inline"`
	// Sharing selects and parameterises the sharing strategy.
	Sharing *GpuSharing `json:"sharing,omitempty"`
}

// GpuSharing selects a strategy and holds the parameters of that strategy only.
type GpuSharing struct {
	Strategy    SharingStrategy    `json:"strategy"`
	TimeSlicing *TimeSlicingConfig `json:"timeSlicing,omitempty"`
	MPS         *MPSConfig         `json:"mps,omitempty"`
}

// TimeSlicingConfig parameterises SharingTimeSlicing.
type TimeSlicingConfig struct {
	Interval TimeSliceInterval `json:"interval,omitempty"`
}

// MPSConfig parameterises SharingMPS.
type MPSConfig struct {
	// DefaultActiveThreadPercentage caps the SMs each client may use (1-100).
	DefaultActiveThreadPercentage *int32 `json:"defaultActiveThreadPercentage,omitempty"`
	// DefaultPinnedDeviceMemoryLimit caps the device memory each client may pin.
	DefaultPinnedDeviceMemoryLimit *resource.Quantity `json:"defaultPinnedDeviceMemoryLimit,omitempty"`
}
