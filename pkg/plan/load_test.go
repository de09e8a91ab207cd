package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
)

func TestLoadDemoManifests(t *testing.T) {
	c, err := LoadCluster("../../demo/cluster.yaml")
	require.NoError(t, err)
	assert.Len(t, c.Nodes, 4)
	p, err := LoadPolicy("../../demo/tierpolicy.yaml")
	require.NoError(t, err)
	assert.Equal(t, []string{"training", "inference", "serving", "dev"}, p.TierNames())
	claims, err := LoadClaims("../../demo/scenarios")
	require.NoError(t, err)
	require.Len(t, claims, 7, "templates become claims; pods are skipped")
	for _, c := range claims {
		for _, r := range c.Spec.Devices.Requests {
			if r.Exactly != nil {
				assert.Equal(t, resourceapi.DeviceAllocationModeExactCount, r.Exactly.AllocationMode, "defaulted like the apiserver")
				assert.Positive(t, r.Exactly.Count)
			}
		}
	}
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := map[string]struct {
		load    func() error
		wantErr string
	}{
		"misspelt cluster field": {
			load: func() error {
				_, err := LoadCluster(write("c1.yaml", "nodes: [{name: a, machin: fake:l4x4}]"))
				return err
			},
			wantErr: `unknown field "nodes[0].machin"`,
		},
		"duplicate node": {
			load:    func() error { _, err := LoadCluster(write("c2.yaml", "nodes: [{name: a}, {name: a}]")); return err },
			wantErr: "nodes[1].name: must be set and unique",
		},
		"no nodes": {
			load:    func() error { _, err := LoadCluster(write("c3.yaml", "nodes: []")); return err },
			wantErr: "at least one node",
		},
		"policy of another kind": {
			load:    func() error { _, err := LoadPolicy(write("p1.yaml", "apiVersion: v1\nkind: ConfigMap\n")); return err },
			wantErr: "want apiVersion tierra.dev/v1alpha1, kind TierPolicy",
		},
		"invalid policy": {
			load: func() error {
				_, err := LoadPolicy(write("p2.yaml", "apiVersion: tierra.dev/v1alpha1\nkind: TierPolicy\nspec:\n  tiers: [{name: a, partitioning: Halves}]\n"))
				return err
			},
			wantErr: "spec.tiers[0].partitioning",
		},
		"misspelt claim field": {
			load: func() error {
				_, err := LoadClaims(write("k1.yaml", "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: a}\nspec: {devices: {requets: []}}\n"))
				return err
			},
			wantErr: `document 1: unknown field "spec.devices.requets"`,
		},
		"missing claims path": {
			load:    func() error { _, err := LoadClaims(filepath.Join(dir, "nope")); return err },
			wantErr: "no such file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, tc.load(), tc.wantErr)
		})
	}
}
