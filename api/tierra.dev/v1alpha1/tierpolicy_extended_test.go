package v1alpha1

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestTierPolicyExtendedResources(t *testing.T) {
	const training, inference = "tierra.dev/training-gpu", "tierra.dev/inference-gpu"
	tests := map[string]struct {
		mutate   func(p *TierPolicy)
		wantErrs []string
		// wantNames is each tier's extended resource name, in policy order.
		wantNames []string
	}{
		"none": {mutate: func(*TierPolicy) {}, wantNames: []string{"", "", ""}},
		"one per tier and nvidia.com/gpu mapped to training": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].ExtendedResourceName = training
				p.Spec.Tiers[1].ExtendedResourceName = inference
				p.Spec.NVIDIAGPUTier = TierDev
			},
			wantNames: []string{training, inference, NVIDIAGPUResource},
		},
		"a tier naming nvidia.com/gpu itself and mapped to it": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].ExtendedResourceName = NVIDIAGPUResource
				p.Spec.NVIDIAGPUTier = TierTraining
			},
			wantNames: []string{NVIDIAGPUResource, "", ""},
		},
		"two tiers, one name": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].ExtendedResourceName = training
				p.Spec.Tiers[2].ExtendedResourceName = training
			},
			wantErrs: []string{`spec.tiers[2].extendedResourceName: Invalid value: "tierra.dev/training-gpu": tiers "training" and "dev" both name extended resource tierra.dev/training-gpu: each extended resource serves one tier's class`},
		},
		"nvidia.com/gpu mapped to one tier and named by another": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[1].ExtendedResourceName = NVIDIAGPUResource
				p.Spec.NVIDIAGPUTier = TierTraining
			},
			wantErrs: []string{`spec.tiers[1].extendedResourceName: Invalid value: "nvidia.com/gpu": tier "inference" names nvidia.com/gpu, which spec.nvidiaGPUTier maps to tier "training"`},
		},
		"nvidia.com/gpu mapped to a tier with its own name": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].ExtendedResourceName = training
				p.Spec.NVIDIAGPUTier = TierTraining
			},
			wantErrs: []string{`spec.nvidiaGPUTier: Invalid value: "training": tier "training" already names extended resource tierra.dev/training-gpu: a tier's class serves one extended resource`},
		},
		"nvidia.com/gpu mapped to no tier": {
			mutate:   func(p *TierPolicy) { p.Spec.NVIDIAGPUTier = "batch" },
			wantErrs: []string{`spec.nvidiaGPUTier: Unsupported value: "batch": supported values: "training", "inference", "dev"`},
		},
		"bad formats": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].ExtendedResourceName = "training-gpu"
				p.Spec.Tiers[1].ExtendedResourceName = "kubernetes.io/gpu"
				p.Spec.Tiers[2].ExtendedResourceName = "requests.tierra.dev/gpu"
			},
			wantErrs: []string{
				`spec.tiers[0].extendedResourceName: Invalid value: "training-gpu": a name must be a domain-prefixed path, such as 'example.com/my-prop'`,
				`spec.tiers[1].extendedResourceName: Invalid value: "kubernetes.io/gpu": must not have "kubernetes.io/" domain`,
				`spec.tiers[2].extendedResourceName: Invalid value: "requests.tierra.dev/gpu": must not have "requests." prefix`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := DefaultTierPolicy()
			tc.mutate(p)
			assert.Equal(t, tc.wantErrs, errStrings(p.Validate()))
			if tc.wantNames != nil {
				var got []string
				for _, n := range p.TierNames() {
					got = append(got, p.ExtendedResourceName(n))
				}
				assert.Equal(t, tc.wantNames, got)
			}
		})
	}
	assert.Empty(t, DefaultTierPolicy().ExtendedResourceName("missing"))
}

// TestExtendedResourceNameCRD checks the CRD's pattern and rules for
// extendedResourceName agree with Validate (upstream's format) on a few
// names, so the API server and the controller do not disagree.
func TestExtendedResourceNameCRD(t *testing.T) {
	raw, err := os.ReadFile(crdPath)
	require.NoError(t, err)
	var crd map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &crd))
	versions := dig(t, crd, "spec", "versions").([]any)
	spec := dig(t, versions[0], "schema", "openAPIV3Schema", "properties", "spec", "properties")
	field := dig(t, spec, "tiers", "items", "properties", "extendedResourceName")
	pattern := regexp.MustCompile(dig(t, field, "pattern").(string))
	rules := dig(t, field, "x-kubernetes-validations").([]any)
	require.Len(t, rules, 2, "the kubernetes.io/ and requests. rules")
	assert.Equal(t, "string", dig(t, spec, "nvidiaGPUTier", "type"))

	for _, name := range []string{
		"tierra.dev/training-gpu", "nvidia.com/gpu", "example.com/GPU_big.1", "a/b",
		"training-gpu", "kubernetes.io/gpu", "x.kubernetes.io/gpu", "requests.tierra.dev/gpu",
		"Tierra.dev/gpu", "tierra.dev/", "tierra.dev/-gpu", "tierra.dev/" + strings.Repeat("g", 64),
		"tierra.dev/a/b",
	} {
		crdValid := pattern.MatchString(name) && !strings.Contains(name, "kubernetes.io/") &&
			!strings.HasPrefix(name, "requests.")
		errs := validateExtendedResourceName(name, nil)
		assert.Equal(t, len(errs) == 0, crdValid, "%s: CRD valid %v, Validate says %v", name, crdValid, errs)
	}
}
