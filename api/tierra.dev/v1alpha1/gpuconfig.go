package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SharingStrategies lists the supported sharing strategies, sorted.
func SharingStrategies() []SharingStrategy {
	return []SharingStrategy{SharingExclusive, SharingMPS, SharingTimeSlicing}
}

// TimeSliceIntervals lists the supported time-slice intervals, shortest first.
func TimeSliceIntervals() []TimeSliceInterval {
	return []TimeSliceInterval{TimeSliceDefault, TimeSliceShort, TimeSliceMedium, TimeSliceLong}
}

// DefaultGpuConfig returns the configuration used when neither the class nor
// the claim carries one: an exclusive GPU.
func DefaultGpuConfig() *GpuConfig {
	c := &GpuConfig{}
	c.Default()
	return c
}

// Default fills in apiVersion and kind when unset, Exclusive sharing when
// no sharing is set, and the strategy's own defaults. It never overrides a
// value that is set, and is idempotent.
func (c *GpuConfig) Default() {
	if c.APIVersion == "" {
		c.APIVersion = SchemeGroupVersion.String()
	}
	if c.Kind == "" {
		c.Kind = GpuConfigKind
	}
	if c.Sharing == nil {
		c.Sharing = &GpuSharing{Strategy: SharingExclusive}
	}
	c.Sharing.Default()
}

// Default fills in the parameters of the chosen strategy: TimeSlicing gets
// the Default interval. An empty strategy is left for Validate to report,
// since guessing would hide a mistake.
func (s *GpuSharing) Default() {
	if s.Strategy != SharingTimeSlicing {
		return
	}
	if s.TimeSlicing == nil {
		s.TimeSlicing = &TimeSlicingConfig{}
	}
	if s.TimeSlicing.Interval == "" {
		s.TimeSlicing.Interval = TimeSliceDefault
	}
}

// Validate checks the configuration; paths are relative to the config
// ("sharing.strategy"). The kubelet plugin and admission share it, so users
// see the same message in both places.
func (c *GpuConfig) Validate() field.ErrorList {
	if c.Sharing == nil {
		return nil
	}
	return c.Sharing.Validate(field.NewPath("sharing"))
}

// Validate checks the strategy and that only the chosen strategy's
// parameters are set.
func (s *GpuSharing) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.Strategy {
	case SharingExclusive, SharingMPS, SharingTimeSlicing:
	case "":
		errs = append(errs, field.Required(fldPath.Child("strategy"),
			"one of \"Exclusive\", \"MPS\", \"TimeSlicing\""))
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("strategy"), s.Strategy, SharingStrategies()))
	}
	if s.TimeSlicing != nil {
		p := fldPath.Child("timeSlicing")
		if s.Strategy != SharingTimeSlicing {
			errs = append(errs, field.Forbidden(p, "only allowed when strategy is \"TimeSlicing\""))
		}
		errs = append(errs, s.TimeSlicing.Validate(p)...)
	}
	if s.MPS != nil {
		p := fldPath.Child("mps")
		if s.Strategy != SharingMPS {
			errs = append(errs, field.Forbidden(p, "only allowed when strategy is \"MPS\""))
		}
		errs = append(errs, s.MPS.Validate(p)...)
	}
	return errs
}

// Validate checks the interval; empty means Default.
func (t *TimeSlicingConfig) Validate(fldPath *field.Path) field.ErrorList {
	switch t.Interval {
	case "", TimeSliceDefault, TimeSliceShort, TimeSliceMedium, TimeSliceLong:
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath.Child("interval"), t.Interval, TimeSliceIntervals())}
}

// Validate checks the MPS limits.
func (m *MPSConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p := m.DefaultActiveThreadPercentage; p != nil && (*p < 1 || *p > 100) {
		errs = append(errs, field.Invalid(fldPath.Child("defaultActiveThreadPercentage"), *p,
			"must be between 1 and 100"))
	}
	if q := m.DefaultPinnedDeviceMemoryLimit; q != nil && q.Sign() <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("defaultPinnedDeviceMemoryLimit"), q.String(),
			"must be greater than zero"))
	}
	return errs
}

// ResolveConfig merges configs in precedence order, lowest first: pass the
// class's config, then the claim's. This is the DRA convention (configs
// apply in order, the later one wins). Each field is taken from the last
// config that sets it; sharing is taken whole, because the parameters of one
// strategy are meaningless under another. Nil configs are skipped. The
// result is a fresh, defaulted copy; the inputs are not modified. Callers
// validate it.
func ResolveConfig(configs ...*GpuConfig) *GpuConfig {
	out := &GpuConfig{}
	for _, c := range configs {
		if c == nil {
			continue
		}
		if c.Sharing != nil {
			out.Sharing = c.Sharing.DeepCopy()
		}
	}
	out.Default()
	return out
}
