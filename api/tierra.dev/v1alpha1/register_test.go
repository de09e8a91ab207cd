package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

func TestAddToScheme(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, AddToScheme(scheme))
	tests := map[string]struct {
		obj  runtime.Object
		kind string
	}{
		"GpuConfig":      {obj: &GpuConfig{}, kind: GpuConfigKind},
		"TierPolicy":     {obj: &TierPolicy{}, kind: TierPolicyKind},
		"TierPolicyList": {obj: &TierPolicyList{}, kind: "TierPolicyList"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gvks, _, err := scheme.ObjectKinds(tc.obj)
			require.NoError(t, err)
			require.Len(t, gvks, 1)
			assert.Equal(t, SchemeGroupVersion.WithKind(tc.kind), gvks[0])
		})
	}
	assert.Equal(t, "tierpolicies.tierra.dev", Resource("tierpolicies").String())
	assert.Equal(t, "GpuConfig.tierra.dev", Kind(GpuConfigKind).String())
}

// TestTierPolicyRoundTrip writes the example policy as YAML and reads it
// back through a scheme-backed decoder, as the controller's clients do.
func TestTierPolicyRoundTrip(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, AddToScheme(scheme))
	want := DefaultTierPolicy()
	raw, err := yaml.Marshal(want)
	require.NoError(t, err)

	obj, gvk, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode(raw, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, SchemeGroupVersion.WithKind(TierPolicyKind), *gvk)
	got, ok := obj.(*TierPolicy)
	require.True(t, ok)
	assert.Equal(t, want, got)
	assert.Empty(t, got.Validate())
}
