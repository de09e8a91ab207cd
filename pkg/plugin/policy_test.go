package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/klog/v2/ktesting"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

func TestLoadPolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	data, err := yaml.Marshal(v1alpha1.DefaultTierPolicy())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o644))
	inAPI := v1alpha1.DefaultTierPolicy()
	inAPI.Name = "prod"

	tests := map[string]struct {
		objects  []runtime.Object
		name     string
		file     string
		wantName string
		wantErr  string
	}{
		"from the API":         {objects: []runtime.Object{inAPI}, name: "prod", wantName: "prod"},
		"missing, file given":  {name: "prod", file: file, wantName: "default"},
		"missing, no file":     {name: "prod", wantErr: `TierPolicy "prod" not found (is the tierpolicies.tierra.dev CRD installed?) and no --tier-policy-file given`},
		"missing, bad file":    {name: "prod", file: filepath.Join(t.TempDir(), "absent.yaml"), wantErr: "read TierPolicy file"},
		"API wins over a file": {objects: []runtime.Object{inAPI}, name: "prod", file: file, wantName: "prod"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			scheme := runtime.NewScheme()
			require.NoError(t, v1alpha1.AddToScheme(scheme))
			client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
				map[schema.GroupVersionResource]string{v1alpha1.TierPolicyResource: "TierPolicyList"}, tc.objects...)
			p, fromAPI, err := loadPolicy(ctx, client, &Config{TierPolicy: tc.name, TierPolicyFile: tc.file})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantName, p.Name)
			assert.Equal(t, len(tc.objects) > 0, fromAPI, "from the API")
			assert.NotEmpty(t, p.Spec.Tiers)
		})
	}
}
