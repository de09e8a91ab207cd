package validation

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"k8s.io/kubernetes/pkg/apis/resource"
	"k8s.io/kubernetes/pkg/registry/resource/deviceclass"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// extendedPolicy is the standard policy with nvidia.com/gpu on training
// and an extended resource of Tierra's own on inference.
func extendedPolicy() *v1alpha1.TierPolicy {
	p := tierratest.StandardPolicy()
	p.Spec.NVIDIAGPUTier = v1alpha1.TierTraining
	p.Spec.Tiers[1].ExtendedResourceName = "tierra.dev/inference-gpu"
	return p
}

// The apiserver's create path keeps the rendered classes'
// extendedResourceName (DRAExtendedResource is GA in 1.37, so
// PrepareForCreate does not drop it) and validates it.
func TestExtendedResourceNameKept(t *testing.T) {
	classes, err := tiers.Render(extendedPolicy())
	require.NoError(t, err)
	got := map[string]string{}
	for _, c := range classes {
		require.Empty(t, validateClass(t, c), c.Name)
		var internal resource.DeviceClass
		toInternal(t, c, &internal)
		deviceclass.Strategy.PrepareForCreate(createContext("deviceclasses"), &internal)
		if internal.Spec.ExtendedResourceName != nil {
			got[c.Name] = *internal.Spec.ExtendedResourceName
		}
	}
	assert.Equal(t, map[string]string{
		"training.gpu.tierra.dev":  "nvidia.com/gpu",
		"inference.gpu.tierra.dev": "tierra.dev/inference-gpu",
	}, got)
}
