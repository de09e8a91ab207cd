package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HealthAction is what a GPU health event does to the devices it concerns:
// Ignore records it (log, event, metrics) and taints nothing; NoSchedule and
// NoExecute taint the devices with that effect until the GPU recovers.
//
// +kubebuilder:validation:Enum=Ignore;NoSchedule;NoExecute
type HealthAction string

const (
	HealthIgnore     HealthAction = "Ignore"
	HealthNoSchedule HealthAction = "NoSchedule"
	HealthNoExecute  HealthAction = "NoExecute"
)

// HealthPolicy classifies the GPU health events NVML reports (XID critical
// errors, double-bit ECC errors, lost GPUs) and says how long a tainted
// GPU must stay quiet before its taint is cleared. Every field has a
// default (see the Default… constants and DefaultXIDActions), so an empty
// or missing section is the default policy.
//
// +kubebuilder:validation:XValidation:rule=`!has(self.quietPeriod) || duration(self.quietPeriod) <= (has(self.maxQuietPeriod) ? duration(self.maxQuietPeriod) : duration('1h'))`,message=`quietPeriod must not exceed maxQuietPeriod (default 1h)`,fieldPath=`.quietPeriod`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`has(self.quietPeriod) || !has(self.maxQuietPeriod) || duration(self.maxQuietPeriod) >= duration('5m')`,message=`maxQuietPeriod must not be less than quietPeriod (default 5m)`,fieldPath=`.maxQuietPeriod`,reason=FieldValueInvalid
type HealthPolicy struct {
	// XIDs override the default table (DefaultXIDActions) per XID code;
	// codes not listed keep their default.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=code
	XIDs []XIDAction `json:"xids,omitempty"`
	// OtherXIDs is the action for an XID that is neither in xids nor in the
	// default table. Default NoSchedule: an XID the table does not know is
	// taken for a hardware or driver fault, as NVIDIA's device plugin does.
	// +optional
	OtherXIDs HealthAction `json:"otherXIDs,omitempty"`
	// DoubleBitECC is the action for an uncorrectable (double-bit) ECC
	// error event. Default NoSchedule.
	// +optional
	DoubleBitECC HealthAction `json:"doubleBitECC,omitempty"`
	// GPULost is the action for a GPU that stops answering NVML (off the
	// bus). Default NoSchedule.
	// +optional
	GPULost HealthAction `json:"gpuLost,omitempty"`
	// QuietPeriod is how long a tainted GPU must answer NVML without a new
	// tainting event before its taints are cleared. Default 5m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`duration(self) >= duration('1s')`,message=`must be at least 1s`
	QuietPeriod *metav1.Duration `json:"quietPeriod,omitempty"`
	// MaxQuietPeriod caps flap damping: each tainting event within
	// flapWindow of the GPU's previous one doubles its quiet period, up to
	// this. Default 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`duration(self) >= duration('1s')`,message=`must be at least 1s`
	MaxQuietPeriod *metav1.Duration `json:"maxQuietPeriod,omitempty"`
	// FlapWindow is how far back tainting events of a GPU count towards
	// damping. Default 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`duration(self) >= duration('0s')`,message=`must not be negative`
	FlapWindow *metav1.Duration `json:"flapWindow,omitempty"`
}

// XIDAction is the action for one XID code.
type XIDAction struct {
	// Code is the XID number, as NVIDIA's XID catalogue lists it.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Code int32 `json:"code"`
	// Action is Ignore, NoSchedule or NoExecute.
	// +required
	Action HealthAction `json:"action"`
}
