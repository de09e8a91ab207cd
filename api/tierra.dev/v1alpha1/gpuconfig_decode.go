package v1alpha1

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// DecodeGpuConfig decodes opaque configuration from a DeviceClass or a
// ResourceClaim. It is strict: apiVersion must be tierra.dev/v1alpha1 and
// kind GpuConfig, field names are case-sensitive, and an unknown, misspelt or
// duplicated field is an error naming its path (for example
// `unknown field "sharing.mps.defaultActiveThreadPercentag"`). The result is
// defaulted and validated.
func DecodeGpuConfig(raw []byte) (*GpuConfig, error) {
	if err := checkGpuConfigTypeMeta(raw); err != nil {
		return nil, err
	}
	c := &GpuConfig{}
	strictErrs, err := kjson.UnmarshalStrict(raw, c, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", GpuConfigKind, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("decode %s: %w", GpuConfigKind, errors.Join(strictErrs...))
	}
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", GpuConfigKind, errs.ToAggregate())
	}
	return c, nil
}

// DecodeGpuConfigLenient decodes a GpuConfig written by this or an older or
// newer release, for reading checkpoints: unknown fields are ignored and
// the result is defaulted but not validated, so that whatever was prepared
// can still be unprepared. apiVersion and kind are still checked. Never use
// it for user input; use DecodeGpuConfig.
func DecodeGpuConfigLenient(raw []byte) (*GpuConfig, error) {
	if err := checkGpuConfigTypeMeta(raw); err != nil {
		return nil, err
	}
	c := &GpuConfig{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", GpuConfigKind, err)
	}
	c.Default()
	return c, nil
}

// checkGpuConfigTypeMeta reports a wrong or missing apiVersion or kind
// before anything else, so that a config meant for another driver gets an
// error about its type rather than about its fields.
func checkGpuConfigTypeMeta(raw []byte) error {
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &tm); err != nil {
		return fmt.Errorf("decode %s: %w", GpuConfigKind, err)
	}
	want := SchemeGroupVersion.String()
	if tm.APIVersion != want {
		return fmt.Errorf("decode %s: apiVersion %q: want %q", GpuConfigKind, tm.APIVersion, want)
	}
	if tm.Kind != GpuConfigKind {
		return fmt.Errorf("decode %s: kind %q: want %q", GpuConfigKind, tm.Kind, GpuConfigKind)
	}
	return nil
}
