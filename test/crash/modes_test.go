package crash

import (
	"testing"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// mode is how the run's claim uses its GPU.
type mode string

const (
	modeExclusive mode = "exclusive"
	modeMIG       mode = "mig"
	modeMPS       mode = "mps"
	// modeMPSPod runs the GPU's MPS daemon in a pod of its own
	// (--mps-daemon-image), which the suite's pod runner runs.
	modeMPSPod    mode = "mps-pod"
	modeTimeSlice mode = "timeslice"
)

var modes = []mode{modeExclusive, modeMIG, modeMPS, modeMPSPod, modeTimeSlice}

// Tiers of the soft-shared modes, each on its own node; the inference
// tier's node serves exclusive and MIG claims.
const (
	tierMPS       = "crash-mps"
	tierMPSPod    = "crash-mps-pod"
	tierTimeSlice = "crash-timeslice"
	// timeSliceLong is nvidia-smi's --set-timeslice value of Long.
	timeSliceLong = "3"
)

func (m mode) soft() bool { return m == modeMPS || m == modeMPSPod || m == modeTimeSlice }

func (m mode) tier() string {
	switch m {
	case modeMPS:
		return tierMPS
	case modeMPSPod:
		return tierMPSPod
	case modeTimeSlice:
		return tierTimeSlice
	}
	return v1alpha1.TierInference
}

// node is the name of the node that serves the mode's tier.
func (m mode) node() string { return "node-" + m.tier() }

// crashPolicy is the default TierPolicy with a Shared MPS tier and a Shared
// time-slicing tier in front, each selecting its own node.
func crashPolicy() *v1alpha1.TierPolicy {
	p := v1alpha1.DefaultTierPolicy()
	shared := func(tier string, s v1alpha1.GpuSharing) v1alpha1.Tier {
		return v1alpha1.Tier{Name: tier, Partitioning: v1alpha1.PartitioningShared, Sharing: &s,
			GPUs: v1alpha1.GPUSelector{NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.NodeTierLabel: tier}}}}
	}
	mps := v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS, MPS: &v1alpha1.MPSConfig{DefaultActiveThreadPercentage: ptr.To[int32](50)}}
	p.Spec.Tiers = append([]v1alpha1.Tier{
		shared(tierMPS, mps),
		shared(tierMPSPod, mps),
		shared(tierTimeSlice, v1alpha1.GpuSharing{Strategy: v1alpha1.SharingTimeSlicing, TimeSlicing: &v1alpha1.TimeSlicingConfig{Interval: v1alpha1.TimeSliceLong}}),
	}, p.Spec.Tiers...)
	p.Default()
	return p
}

// deviceUUID is the UUID of the published device's GPU (a MIG device's
// parent).
func deviceUUID(t *testing.T, published []*resourceapi.ResourceSlice, device string) string {
	t.Helper()
	for _, s := range published {
		for _, d := range s.Spec.Devices {
			if d.Name == device {
				uuid := slices.StringAttribute(d, slices.AttrUUID)
				if uuid == "" {
					uuid = slices.StringAttribute(d, slices.AttrParentUUID)
				}
				require.NotEmpty(t, uuid, "device %s has no UUID", device)
				return uuid
			}
		}
	}
	require.Failf(t, "device not published", "%s", device)
	return ""
}
