package v1alpha1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Partitionings lists the supported partitionings.
func Partitionings() []Partitioning {
	return []Partitioning{PartitioningWhole, PartitioningMIG, PartitioningShared}
}

// Validate checks the spec; paths start at "spec". The controller reports
// the errors in the Ready condition; the same messages serve any admission
// path. Validate does not require Default to have run.
func (p *TierPolicy) Validate() field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateTiers(p.Spec.Tiers, spec.Child("tiers"))
	errs = append(errs, validateExtendedResources(&p.Spec, spec)...)
	errs = append(errs, p.Spec.PriceBook.Validate(spec.Child("priceBook"))...)
	errs = append(errs, validateTenants(p.Spec.Tenants, p.TierNames(), spec.Child("tenants"))...)
	if p.Spec.OpenTenant != nil {
		errs = append(errs, validateAllowedTiers(p.Spec.OpenTenant.AllowedTiers, p.TierNames(),
			spec.Child("openTenant", "allowedTiers"))...)
	}
	errs = append(errs, p.Spec.Health.Validate(spec.Child("health"))...)
	return errs
}

func validateTiers(tiers []Tier, fldPath *field.Path) field.ErrorList {
	if len(tiers) == 0 {
		return field.ErrorList{field.Required(fldPath, "at least one tier is required")}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	for i := range tiers {
		p := fldPath.Index(i)
		errs = append(errs, validateDNSLabel(tiers[i].Name, p.Child("name"))...)
		if name := tiers[i].Name; name == "gpu" || name == "mig" {
			errs = append(errs, field.Invalid(p.Child("name"), name,
				fmt.Sprintf("tier name %s is reserved: %s.%s is a plain class of the driver", name, name, DriverName)))
		}
		if seen.Has(tiers[i].Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), tiers[i].Name))
		}
		seen.Insert(tiers[i].Name)
		errs = append(errs, tiers[i].Validate(p)...)
	}
	return errs
}

// Validate checks one tier apart from its name's uniqueness: the
// partitioning, the sharing it allows, and the GPU selector. An unset
// sharing or strategy is judged as Default would fill it in.
func (t *Tier) Validate(fldPath *field.Path) field.ErrorList {
	errs := t.GPUs.Validate(fldPath.Child("gpus"))
	var detail string
	allowed := sets.New[SharingStrategy]()
	switch t.Partitioning {
	case PartitioningShared:
		allowed.Insert(SharingMPS, SharingTimeSlicing)
		detail = "Shared partitioning needs strategy \"MPS\" or \"TimeSlicing\""
	case PartitioningWhole, PartitioningMIG:
		allowed.Insert(SharingExclusive)
		detail = fmt.Sprintf("%s partitioning needs strategy \"Exclusive\"", t.Partitioning)
	case "":
		errs = append(errs, field.Required(fldPath.Child("partitioning"),
			"one of \"Whole\", \"MIG\", \"Shared\""))
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("partitioning"), t.Partitioning, Partitionings()))
	}
	if t.Sharing == nil {
		return errs
	}
	defaulted := t.DeepCopy()
	defaulted.Default()
	s := defaulted.Sharing
	known := sets.New(SharingStrategies()...).Has(s.Strategy)
	if known && allowed.Len() > 0 && !allowed.Has(s.Strategy) {
		errs = append(errs, field.Invalid(fldPath.Child("sharing", "strategy"), s.Strategy, detail))
	}
	return append(errs, s.Validate(fldPath.Child("sharing"))...)
}

// Validate checks the node selector, that products are named once, and
// that minMemory is a non-negative quantity.
func (s GPUSelector) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.NodeSelector != nil {
		errs = append(errs, validateSelector(s.NodeSelector, fldPath.Child("nodeSelector"))...)
	}
	errs = append(errs, validateNames(s.Products, fldPath.Child("products"))...)
	if s.MinMemory != "" {
		q, err := resource.ParseQuantity(s.MinMemory)
		if err != nil {
			errs = append(errs, field.Invalid(fldPath.Child("minMemory"), s.MinMemory,
				"must be a quantity such as \"80Gi\""))
		} else if q.Sign() < 0 {
			errs = append(errs, field.Invalid(fldPath.Child("minMemory"), s.MinMemory,
				"must not be negative"))
		}
	}
	return errs
}

// Validate checks that every price parses, products are priced once per
// list, and overrides have unique names, valid selectors and a discount in
// 0-100.
func (b PriceBook) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.Default != "" {
		errs = append(errs, validatePrice(b.Default, fldPath.Child("default"))...)
	}
	errs = append(errs, validateProductPrices(b.Products, fldPath.Child("products"))...)
	seen := sets.New[string]()
	for i, o := range b.Overrides {
		p := fldPath.Child("overrides").Index(i)
		errs = append(errs, validateDNSLabel(o.Name, p.Child("name"))...)
		if seen.Has(o.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), o.Name))
		}
		seen.Insert(o.Name)
		errs = append(errs, validateSelector(&o.NodeSelector, p.Child("nodeSelector"))...)
		if o.Discount < 0 || o.Discount > 100 {
			errs = append(errs, field.Invalid(p.Child("discount"), o.Discount, "must be between 0 and 100"))
		}
		errs = append(errs, validateProductPrices(o.Products, p.Child("products"))...)
	}
	return errs
}

func validateProductPrices(prices []ProductPrice, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, pp := range prices {
		p := fldPath.Index(i)
		switch {
		case pp.Product == "":
			errs = append(errs, field.Required(p.Child("product"), "product name as NVML reports it"))
		case seen.Has(pp.Product):
			errs = append(errs, field.Duplicate(p.Child("product"), pp.Product))
		}
		seen.Insert(pp.Product)
		errs = append(errs, validatePrice(pp.PerGPUHour, p.Child("perGPUHour"))...)
	}
	return errs
}

func validatePrice(s string, fldPath *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(fldPath, "a decimal dollar amount such as \"2.75\"")}
	}
	if _, err := ParsePrice(s); err != nil {
		return field.ErrorList{field.Invalid(fldPath, s, err.Error())}
	}
	return nil
}

func validateTenants(tenants []Tenant, tierNames []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range tenants {
		p := fldPath.Index(i)
		errs = append(errs, validateDNSLabel(t.Name, p.Child("name"))...)
		if seen.Has(t.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), t.Name))
		}
		seen.Insert(t.Name)
		errs = append(errs, validateSelector(&t.NamespaceSelector, p.Child("namespaceSelector"))...)
		errs = append(errs, validateAllowedTiers(t.AllowedTiers, tierNames, p.Child("allowedTiers"))...)
	}
	return errs
}

// validateAllowedTiers reports empty, repeated and undefined tier names.
func validateAllowedTiers(allowed, tierNames []string, fldPath *field.Path) field.ErrorList {
	errs := validateNames(allowed, fldPath)
	defined := sets.New(tierNames...)
	for i, name := range allowed {
		if name != "" && !defined.Has(name) {
			errs = append(errs, field.NotSupported(fldPath.Index(i), name, tierNames))
		}
	}
	return errs
}

// validateNames reports empty and repeated entries of a list of names.
func validateNames(names []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, n := range names {
		switch {
		case n == "":
			errs = append(errs, field.Required(fldPath.Index(i), "must not be empty"))
		case seen.Has(n):
			errs = append(errs, field.Duplicate(fldPath.Index(i), n))
		}
		seen.Insert(n)
	}
	return errs
}

func validateDNSLabel(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "a DNS label (lower case letters, digits and '-')")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(name) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

func validateSelector(sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(sel,
		metav1validation.LabelSelectorValidationOptions{}, fldPath)
}
