package v1alpha1

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/operation"
	"k8s.io/apimachinery/pkg/api/validate"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ExtendedResourceName is the extended resource that the named tier's
// DeviceClass serves: nvidia.com/gpu for spec.nvidiaGPUTier, else the
// tier's own extendedResourceName, else "" (claims only).
func (p *TierPolicy) ExtendedResourceName(tier string) string {
	if p.Spec.NVIDIAGPUTier != "" && p.Spec.NVIDIAGPUTier == tier {
		return NVIDIAGPUResource
	}
	if t := p.Tier(tier); t != nil {
		return t.ExtendedResourceName
	}
	return ""
}

// validateExtendedResources checks the tiers' extended resource names
// (upstream's format, the one the apiserver applies to
// DeviceClass.spec.extendedResourceName), that no two tiers name the same
// one, and that spec.nvidiaGPUTier names a tier and collides with no tier's
// own name. Collisions name both tiers.
func validateExtendedResources(spec *TierPolicySpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	tiersPath := fldPath.Child("tiers")
	owner := map[string]string{} // extended resource name -> first tier naming it
	for i := range spec.Tiers {
		t := &spec.Tiers[i]
		if t.ExtendedResourceName == "" {
			continue
		}
		p := tiersPath.Index(i).Child("extendedResourceName")
		errs = append(errs, validateExtendedResourceName(t.ExtendedResourceName, p)...)
		if first, ok := owner[t.ExtendedResourceName]; ok {
			errs = append(errs, field.Invalid(p, t.ExtendedResourceName, fmt.Sprintf(
				"tiers %q and %q both name extended resource %s: each extended resource serves one tier's class",
				first, t.Name, t.ExtendedResourceName)))
			continue
		}
		owner[t.ExtendedResourceName] = t.Name
	}
	mapped := spec.NVIDIAGPUTier
	if mapped == "" {
		return errs
	}
	p := fldPath.Child("nvidiaGPUTier")
	var tier *Tier
	var names []string
	for i := range spec.Tiers {
		names = append(names, spec.Tiers[i].Name)
		if spec.Tiers[i].Name == mapped {
			tier = &spec.Tiers[i]
		}
	}
	if tier == nil {
		return append(errs, field.NotSupported(p, mapped, names))
	}
	if own := tier.ExtendedResourceName; own != "" && own != NVIDIAGPUResource {
		errs = append(errs, field.Invalid(p, mapped, fmt.Sprintf(
			"tier %q already names extended resource %s: a tier's class serves one extended resource", mapped, own)))
	}
	for i := range spec.Tiers {
		t := &spec.Tiers[i]
		if t.Name != mapped && t.ExtendedResourceName == NVIDIAGPUResource {
			errs = append(errs, field.Invalid(tiersPath.Index(i).Child("extendedResourceName"), t.ExtendedResourceName,
				fmt.Sprintf("tier %q names %s, which spec.nvidiaGPUTier maps to tier %q", t.Name, NVIDIAGPUResource, mapped)))
		}
	}
	return errs
}

// validateExtendedResourceName applies upstream's extended resource name
// format (k8s.io/apimachinery validate.ExtendedResourceName).
func validateExtendedResourceName(name string, fldPath *field.Path) field.ErrorList {
	errs := validate.ExtendedResourceName(context.Background(), operation.Operation{Type: operation.Create}, fldPath, &name, nil)
	for i := range errs {
		errs[i].Origin = "" // the controller reports plain field errors
	}
	return errs
}
