// Package webhook is Tierra's validating admission webhook for
// ResourceClaims and ResourceClaimTemplates: it runs the GpuConfig decoding
// and validation that prepare runs on the node (pkg/prepare's
// CheckRequestConfigs) when a claim is created, so a claim whose config
// could never be prepared is refused by the apiserver, with the same
// message, before it holds a GPU. tierra-controller serves it.
package webhook

import (
	"context"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// ClassGetter reads a DeviceClass, for its class-level configs.
type ClassGetter interface {
	DeviceClass(ctx context.Context, name string) (*resourceapi.DeviceClass, error)
}

// ValidateClaimSpec checks every GpuConfig of the spec, merged with the
// configs of the classes its requests name, as prepare would. A class that
// does not exist contributes nothing (the claim cannot be allocated
// anyway, and the scheduler says so); any other error reading one is
// returned, so the webhook fails closed.
func ValidateClaimSpec(ctx context.Context, spec *resourceapi.ResourceClaimSpec, classes ClassGetter) error {
	var configs []resourceapi.DeviceAllocationConfiguration
	var requests []string
	seen := map[string]*resourceapi.DeviceClass{}
	addClass := func(request, class string) error {
		requests = append(requests, request)
		dc, ok := seen[class]
		if !ok {
			var err error
			dc, err = classes.DeviceClass(ctx, class)
			if apierrors.IsNotFound(err) {
				dc, err = nil, nil
			}
			if err != nil {
				return fmt.Errorf("read DeviceClass %s: %w", class, err)
			}
			seen[class] = dc
		}
		if dc == nil {
			return nil
		}
		for _, c := range dc.Spec.Config {
			configs = append(configs, resourceapi.DeviceAllocationConfiguration{
				Source: resourceapi.AllocationConfigSourceClass, Requests: []string{request}, DeviceConfiguration: c.DeviceConfiguration})
		}
		return nil
	}
	for _, r := range spec.Devices.Requests {
		if r.Exactly != nil {
			if err := addClass(r.Name, r.Exactly.DeviceClassName); err != nil {
				return err
			}
		}
		for _, s := range r.FirstAvailable {
			if err := addClass(r.Name+"/"+s.Name, s.DeviceClassName); err != nil {
				return err
			}
		}
	}
	for _, c := range spec.Devices.Config {
		configs = append(configs, resourceapi.DeviceAllocationConfiguration{
			Source: resourceapi.AllocationConfigSourceClaim, Requests: c.Requests, DeviceConfiguration: c.DeviceConfiguration})
	}
	return prepare.CheckRequestConfigs(v1alpha1.DriverName, configs, requests)
}
