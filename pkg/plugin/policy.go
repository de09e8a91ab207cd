package plugin

import (
	"context"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// loadPolicy reads the named TierPolicy from the API; when the CRD or the
// object is absent it falls back to the policy file, else it fails saying so.
// fromAPI says which: only a policy from the API is watched for changes.
func loadPolicy(ctx context.Context, client dynamic.Interface, cfg *Config) (_ *v1alpha1.TierPolicy, fromAPI bool, _ error) {
	u, err := client.Resource(v1alpha1.TierPolicyResource).Get(ctx, cfg.TierPolicy, metav1.GetOptions{})
	if err == nil {
		p, err := checkedPolicy(u)
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
	p, err := v1alpha1.DecodeTierPolicy(data)
	if err != nil {
		return nil, fmt.Errorf("TierPolicy file %s: %w", path, err)
	}
	return p, nil
}

// checkedPolicy is the TierPolicy from the API, defaulted and valid.
func checkedPolicy(u *unstructured.Unstructured) (*v1alpha1.TierPolicy, error) {
	p, err := v1alpha1.TierPolicyFromUnstructured(u)
	if err != nil {
		return nil, err
	}
	if err := p.DefaultAndValidate(); err != nil {
		return nil, err
	}
	return p, nil
}
