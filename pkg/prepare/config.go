package prepare

import (
	"encoding/json"
	"fmt"
	"slices"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/resourceclaim"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// decodedConfig is one opaque config entry of ours, decoded strictly.
type decodedConfig struct {
	source   resourceapi.AllocationConfigSource
	requests []string
	config   *v1alpha1.GpuConfig
}

// decodeConfigs decodes every opaque config for driverName in the
// allocation, strictly: an unknown field or value is an error naming the
// config's position, source and field.
func decodeConfigs(driverName string, configs []resourceapi.DeviceAllocationConfiguration) ([]decodedConfig, error) {
	var out []decodedConfig
	for i, c := range configs {
		if c.Opaque == nil || c.Opaque.Driver != driverName {
			continue
		}
		cfg, err := v1alpha1.DecodeGpuConfig(c.Opaque.Parameters.Raw)
		if err != nil {
			return nil, fmt.Errorf("allocation config %d (%s, requests %v): %w", i, c.Source, c.Requests, err)
		}
		out = append(out, decodedConfig{source: c.Source, requests: c.Requests, config: cfg})
	}
	return out, nil
}

// resolveFor merges the configs that apply to a request: class configs
// first, then claim configs, so the claim wins. A config applies when it
// names no requests, or names the request or its parent ("req" for
// "req/sub").
func resolveFor(request string, configs []decodedConfig) (*v1alpha1.GpuConfig, json.RawMessage, error) {
	var chain []*v1alpha1.GpuConfig
	for _, source := range []resourceapi.AllocationConfigSource{resourceapi.AllocationConfigSourceClass, resourceapi.AllocationConfigSourceClaim} {
		for _, c := range configs {
			if c.source == source && appliesTo(c.requests, request) {
				chain = append(chain, c.config)
			}
		}
	}
	cfg := v1alpha1.ResolveConfig(chain...)
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, nil, fmt.Errorf("request %q: invalid %s: %w", request, v1alpha1.GpuConfigKind, errs.ToAggregate())
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("request %q: encode config: %w", request, err)
	}
	return cfg, raw, nil
}

func appliesTo(requests []string, request string) bool {
	if len(requests) == 0 {
		return true
	}
	return slices.Contains(requests, request) || slices.Contains(requests, resourceclaim.BaseRequestRef(request))
}

// CheckRequestConfigs decodes and resolves the opaque configs of
// driverName for each request exactly as ClaimPlan does at prepare, so that
// admission (pkg/webhook) refuses a claim with the message its pod would
// otherwise get on the node. configs are the class configs then the claim's,
// each with its Source; requests are the request names, "req/sub" for a
// firstAvailable subrequest. Errors wrap ErrInvalidConfig.
func CheckRequestConfigs(driverName string, configs []resourceapi.DeviceAllocationConfiguration, requests []string) error {
	decoded, err := decodeConfigs(driverName, configs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	for _, r := range requests {
		if _, _, err := resolveFor(r, decoded); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}
