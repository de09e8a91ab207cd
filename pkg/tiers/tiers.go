// Package tiers renders the DeviceClasses of a TierPolicy. It is pure
// (CGO_ENABLED=0): tierra-controller applies what Render returns, and the
// conformance tests feed the same classes to the scheduler's allocator.
//
// Classes:
//
//   - <tier>.gpu.tierra.dev, one per tier: the devices published for that
//     tier (attribute gpu.tierra.dev/tier), with the tier's sharing as
//     class-level opaque GpuConfig (Exclusive for Whole and MIG tiers), and
//     spec.extendedResourceName when the tier names one or is the policy's
//     nvidiaGPUTier (nvidia.com/gpu): pods then ask for the tier's devices
//     in resources.limits and the scheduler makes the claim (KEP-5004).
//   - gpu.tierra.dev: a whole, exclusive GPU of any tier, i.e. every device
//     that is neither a MIG slice nor a soft-shared GPU. Shared GPUs are
//     left out on purpose: a claim for "a GPU" must not silently get a
//     default share of one.
//   - mig.gpu.tierra.dev: a MIG slice of any tier.
//
// The plain classes ignore tiers; which namespaces may use which classes is
// admission's job (the tenancy ValidatingAdmissionPolicy).
package tiers

import (
	"encoding/json"
	"fmt"
	"strconv"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// Class names and the labels every rendered class carries.
const (
	ClassGPU = v1alpha1.DriverName
	ClassMIG = "mig." + v1alpha1.DriverName

	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tierra-controller"
	LabelTier      = "tierra.dev/tier"
)

// ClassName is the DeviceClass of a tier: <tier>.gpu.tierra.dev.
func ClassName(tier string) string { return (&v1alpha1.Tier{Name: tier}).DeviceClassName() }

var driverIs = fmt.Sprintf("device.driver == %q", v1alpha1.DriverName)

// Selector expressions of the plain classes.
var (
	GPUSelector = fmt.Sprintf("%s && !has(%s) && %s == %q", driverIs, slices.CELAttribute(slices.AttrMIGProfile), slices.CELAttribute(slices.AttrSharing), v1alpha1.SharingExclusive)
	MIGSelector = fmt.Sprintf("%s && has(%s)", driverIs, slices.CELAttribute(slices.AttrMIGProfile))
)

// TierSelector is the selector expression of a tier's class.
func TierSelector(tier string) string {
	return fmt.Sprintf("%s && %s == %s", driverIs, slices.CELAttribute(slices.AttrTier), strconv.Quote(tier))
}

// Render returns the tier classes in policy order, then gpu.tierra.dev and
// mig.gpu.tierra.dev.
func Render(policy *v1alpha1.TierPolicy) ([]*resourceapi.DeviceClass, error) {
	if policy == nil {
		return nil, fmt.Errorf("render device classes: no TierPolicy")
	}
	exclusive := &v1alpha1.GpuSharing{Strategy: v1alpha1.SharingExclusive}
	var out []*resourceapi.DeviceClass
	for _, t := range policy.Spec.Tiers {
		// Default a copy: Render never changes the caller's policy.
		tier := t
		tier.Sharing = t.Sharing.DeepCopy()
		tier.Default()
		sharing := tier.Sharing
		if sharing == nil || tier.Partitioning != v1alpha1.PartitioningShared {
			sharing = exclusive
		}
		c, err := class(tier.DeviceClassName(), tier.Name, TierSelector(tier.Name), sharing)
		if err != nil {
			return nil, fmt.Errorf("tier %q: %w", tier.Name, err)
		}
		if name := policy.ExtendedResourceName(tier.Name); name != "" {
			c.Spec.ExtendedResourceName = &name
		}
		out = append(out, c)
	}
	for _, plain := range []struct{ name, selector string }{{ClassGPU, GPUSelector}, {ClassMIG, MIGSelector}} {
		c, err := class(plain.name, "", plain.selector, exclusive)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func class(name, tier, selector string, sharing *v1alpha1.GpuSharing) (*resourceapi.DeviceClass, error) {
	raw, err := json.Marshal(v1alpha1.GpuConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupName + "/" + v1alpha1.Version, Kind: v1alpha1.GpuConfigKind},
		Sharing:  sharing,
	})
	if err != nil {
		return nil, fmt.Errorf("class %s: encode GpuConfig: %w", name, err)
	}
	labels := map[string]string{LabelManagedBy: ManagedBy}
	if tier != "" {
		labels[LabelTier] = tier
	}
	return &resourceapi.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: resourceapi.DeviceClassSpec{
			Selectors: []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: selector}}},
			Config: []resourceapi.DeviceClassConfiguration{{DeviceConfiguration: resourceapi.DeviceConfiguration{
				Opaque: &resourceapi.OpaqueDeviceConfiguration{Driver: v1alpha1.DriverName, Parameters: runtime.RawExtension{Raw: raw}},
			}}},
		},
	}, nil
}
