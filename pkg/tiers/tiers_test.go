package tiers_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestRender(t *testing.T) {
	classes, err := tiers.Render(tierratest.StandardPolicy())
	require.NoError(t, err)
	type want struct {
		selector string
		sharing  v1alpha1.SharingStrategy
		tier     string
	}
	wants := map[string]want{
		"training.gpu.tierra.dev": {
			selector: `device.driver == "gpu.tierra.dev" && device.attributes["gpu.tierra.dev"].tier == "training"`,
			sharing:  v1alpha1.SharingExclusive, tier: "training",
		},
		"inference.gpu.tierra.dev": {
			selector: `device.driver == "gpu.tierra.dev" && device.attributes["gpu.tierra.dev"].tier == "inference"`,
			sharing:  v1alpha1.SharingExclusive, tier: "inference",
		},
		"dev.gpu.tierra.dev": {
			selector: `device.driver == "gpu.tierra.dev" && device.attributes["gpu.tierra.dev"].tier == "dev"`,
			sharing:  v1alpha1.SharingTimeSlicing, tier: "dev",
		},
		"gpu.tierra.dev": {
			selector: `device.driver == "gpu.tierra.dev" && !has(device.attributes["gpu.tierra.dev"].migProfile) && device.attributes["gpu.tierra.dev"].sharing == "Exclusive"`,
			sharing:  v1alpha1.SharingExclusive,
		},
		"mig.gpu.tierra.dev": {
			selector: `device.driver == "gpu.tierra.dev" && has(device.attributes["gpu.tierra.dev"].migProfile)`,
			sharing:  v1alpha1.SharingExclusive,
		},
	}
	var gotNames []string
	for _, c := range classes {
		gotNames = append(gotNames, c.Name)
	}
	assert.Equal(t, []string{"training.gpu.tierra.dev", "inference.gpu.tierra.dev", "dev.gpu.tierra.dev", "gpu.tierra.dev", "mig.gpu.tierra.dev"}, gotNames)
	for _, c := range classes {
		t.Run(c.Name, func(t *testing.T) {
			w, ok := wants[c.Name]
			require.True(t, ok)
			require.Len(t, c.Spec.Selectors, 1)
			assert.Equal(t, w.selector, c.Spec.Selectors[0].CEL.Expression)
			assert.Equal(t, "tierra-controller", c.Labels[tiers.LabelManagedBy])
			assert.Equal(t, w.tier, c.Labels[tiers.LabelTier])
			require.Len(t, c.Spec.Config, 1)
			opaque := c.Spec.Config[0].Opaque
			require.NotNil(t, opaque)
			assert.Equal(t, "gpu.tierra.dev", opaque.Driver)
			var cfg v1alpha1.GpuConfig
			require.NoError(t, json.Unmarshal(opaque.Parameters.Raw, &cfg))
			assert.Equal(t, "tierra.dev/v1alpha1", cfg.APIVersion)
			assert.Equal(t, "GpuConfig", cfg.Kind)
			require.NotNil(t, cfg.Sharing)
			assert.Equal(t, w.sharing, cfg.Sharing.Strategy)
		})
	}
}

func TestRenderNoPolicy(t *testing.T) {
	_, err := tiers.Render(nil)
	assert.ErrorContains(t, err, "no TierPolicy")
}

// The tiers' extended resources, and nvidia.com/gpu for nvidiaGPUTier, land
// on their classes; the plain classes and unnamed tiers have none.
func TestRenderExtendedResources(t *testing.T) {
	policy := tierratest.StandardPolicy()
	policy.Spec.Tiers[1].ExtendedResourceName = "tierra.dev/inference-gpu"
	policy.Spec.NVIDIAGPUTier = v1alpha1.TierTraining
	require.Empty(t, policy.Validate())
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	got := map[string]string{}
	for _, c := range classes {
		if c.Spec.ExtendedResourceName != nil {
			got[c.Name] = *c.Spec.ExtendedResourceName
		}
	}
	assert.Equal(t, map[string]string{
		"training.gpu.tierra.dev":  "nvidia.com/gpu",
		"inference.gpu.tierra.dev": "tierra.dev/inference-gpu",
	}, got)
	assert.Empty(t, policy.Spec.Tiers[0].ExtendedResourceName, "Render does not change the policy")
}
