package v1alpha1

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// TierPolicyResource is the TierPolicy CRD's resource, for dynamic clients
// and informers.
var TierPolicyResource = SchemeGroupVersion.WithResource("tierpolicies")

// DecodeTierPolicy decodes a TierPolicy from YAML or JSON (a file, a
// ConfigMap key), as strictly as DecodeGpuConfig: apiVersion must be
// tierra.dev/v1alpha1 and kind TierPolicy, and an unknown, misspelt or
// duplicated field is an error naming its path. The result is defaulted
// and validated.
func DecodeTierPolicy(data []byte) (*TierPolicy, error) {
	raw, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", TierPolicyKind, err)
	}
	p := &TierPolicy{}
	strictErrs, err := kjson.UnmarshalStrict(raw, p, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", TierPolicyKind, err)
	}
	if p.APIVersion != SchemeGroupVersion.String() || p.Kind != TierPolicyKind {
		return nil, fmt.Errorf("decode %s: want apiVersion %s, kind %s; got %q, %q",
			TierPolicyKind, SchemeGroupVersion, TierPolicyKind, p.APIVersion, p.Kind)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("decode %s: %w", TierPolicyKind, errors.Join(strictErrs...))
	}
	if err := p.DefaultAndValidate(); err != nil {
		return nil, err
	}
	return p, nil
}

// TierPolicyFromUnstructured converts a TierPolicy read through a dynamic
// client or informer (the apiserver has pruned unknown fields). It does
// not validate: the plugin then calls DefaultAndValidate, while the
// controller reports each invalid field in the policy's status.
func TierPolicyFromUnstructured(u *unstructured.Unstructured) (*TierPolicy, error) {
	p := &TierPolicy{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), p); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", TierPolicyKind, u.GetName(), err)
	}
	return p, nil
}

// DefaultAndValidate defaults the policy and returns its validation errors
// as one error naming the policy and each field.
func (p *TierPolicy) DefaultAndValidate() error {
	p.Default()
	if errs := p.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid %s %s: %w", TierPolicyKind, p.Name, errs.ToAggregate())
	}
	return nil
}
