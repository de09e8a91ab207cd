package plugin

import (
	"context"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// tierPolicies is the TierPolicy resource.
var tierPolicies = v1alpha1.SchemeGroupVersion.WithResource("tierpolicies")

// loadPolicy reads the named TierPolicy from the API; when the CRD or the
// object is absent it falls back to the policy file, else it fails saying so.
// fromAPI says which: only a policy from the API is watched for changes.
func loadPolicy(ctx context.Context, client dynamic.Interface, cfg *Config) (_ *v1alpha1.TierPolicy, fromAPI bool, _ error) {
	u, err := client.Resource(tierPolicies).Get(ctx, cfg.TierPolicy, metav1.GetOptions{})
	if err == nil {
		p := &v1alpha1.TierPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), p); err != nil {
			return nil, false, fmt.Errorf("TierPolicy %s: %w", cfg.TierPolicy, err)
		}
		p, err = checkPolicy(p, "TierPolicy "+cfg.TierPolicy)
		return p, err == nil, err
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("get TierPolicy %s: %w", cfg.TierPolicy, err)
	}
	if cfg.TierPolicyFile == "" {
		return nil, false, fmt.Errorf("TierPolicy %q not found (is the tierpolicies.tierra.dev CRD installed?) and no --tier-policy-file given: %w", cfg.TierPolicy, err)
	}
	klog.FromContext(ctx).Info("TierPolicy not in the API, using the policy file", "tierPolicy", cfg.TierPolicy, "file", cfg.TierPolicyFile)
	p, err := readPolicyFile(cfg.TierPolicyFile)
	return p, false, err
}

func readPolicyFile(path string) (*v1alpha1.TierPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read TierPolicy file: %w", err)
	}
	p := &v1alpha1.TierPolicy{}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		return nil, fmt.Errorf("TierPolicy file %s: %w", path, err)
	}
	return checkPolicy(p, "TierPolicy file "+path)
}

func checkPolicy(p *v1alpha1.TierPolicy, what string) (*v1alpha1.TierPolicy, error) {
	p.Default()
	if errs := p.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", what, errs.ToAggregate())
	}
	return p, nil
}
