//go:build cgo

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/sim"
)

const migData = "../../pkg/sim/testdata/mig/"

// TestSimMIGEraPolicyAgainstShared runs a MIG-era cluster (H100/H200
// nodes, pods asking for 1g/2g/3g) end to end under a Whole+MIG policy and
// an all-Shared one, and reads the one comparison.
func TestSimMIGEraPolicyAgainstShared(t *testing.T) {
	args := []string{"sim", "--nodes", migData + "nodes.csv", "--pods", migData + "pods.csv",
		"--policy", migData + "shared.yaml", "--policy", migData + "mig.yaml", "--seeds", "42-43", "--scorers", "frag,bestfit"}
	out, err := runCommand(t, newSimCommand(), append(args[1:], "-o", "json")...)
	require.NoError(t, err, out)
	var cmp sim.Comparison
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &cmp), out)
	require.Len(t, cmp.Rows, 4)
	rows := map[string]sim.ComparisonRow{}
	for _, r := range cmp.Rows {
		rows[r.Cluster+"/"+r.Scorer] = r
		assert.Zero(t, r.Divergence, "%s/%s", r.Cluster, r.Scorer)
		assert.Equal(t, 32, r.GPUs)
	}
	mig := rows["mig/frag"]
	require.Len(t, mig.Tiers, 2)
	assert.Equal(t, "inference", mig.Tiers[1].Tier)
	assert.Equal(t, 24, mig.Tiers[1].GPUs)
	assert.Greater(t, mig.Tiers[1].Pods, 0.0)
	assert.Greater(t, mig.Tiers[1].Held, mig.Tiers[1].Alloc, "MIG slices hold whole memory slices")
	assert.InDelta(t, rows["shared/frag"].AllocAtMax, rows["shared/frag"].HeldAtMax, 1e-9, "a share holds what it asks")

	text, err := runCommand(t, newSimCommand(), args[1:]...)
	require.NoError(t, err, text)
	assert.Equal(t, 1, strings.Count(text, "alloc@100"), "one table:\n%s", text)
	for _, want := range []string{"shared       frag", "mig          bestfit", "inference", "training", "dev"} {
		assert.Contains(t, text, want)
	}
}

// TestSimDemoPolicyOnCatalogueNodes publishes catalogue and openb nodes
// under the demo's four-tier policy with tenants: the open tenant's claims
// take the dev tier's open slots and the inference MIG slices.
func TestSimDemoPolicyOnCatalogueNodes(t *testing.T) {
	dir := t.TempDir()
	nodes := filepath.Join(dir, "nodes.csv")
	require.NoError(t, os.WriteFile(nodes, []byte(`sn,cpu_milli,memory_mib,gpu,model,labels
train,192000,2097152,8,H200,tierra.dev/tier=training
infer,192000,2097152,8,H200,tierra.dev/tier=inference
serve,64000,262144,4,L4,tierra.dev/tier=serving
old,96000,786432,8,V100M32,
b200,192000,2097152,8,B200,
a100,96000,1048576,8,A100,tierra.dev/tier=inference
`), 0o600))
	out, err := runCommand(t, newSimCommand(), "--nodes", nodes, "--pods", migData+"pods.csv",
		"--policy", "../../demo/tierpolicy.yaml", "--seeds", "42", "--scorers", "frag", "-o", "json")
	require.NoError(t, err, out)
	var cmp sim.Comparison
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &cmp), out)
	require.Len(t, cmp.Rows, 1)
	r := cmp.Rows[0]
	assert.Equal(t, "tierpolicy", r.Cluster)
	assert.Equal(t, 44, r.GPUs)
	gpus := map[string]int{}
	for _, tr := range r.Tiers {
		gpus[tr.Tier] = tr.GPUs
	}
	assert.Equal(t, map[string]int{"training": 8, "inference": 16, "serving": 4, "dev": 16}, gpus)
	assert.Greater(t, r.AllocAtMax, 0.0)
	assert.Zero(t, r.Divergence)
}

func TestSimPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "nodes.csv")
	require.NoError(t, os.WriteFile(bad, []byte("sn,cpu_milli,memory_mib,gpu,model\nn0,1000,1024,8,H300\n"), 0o600))
	tests := map[string]struct {
		args    []string
		wantErr []string
	}{
		"unknown model": {
			args:    []string{"--nodes", bad, "--pods", migData + "pods.csv", "--policy", migData + "mig.yaml"},
			wantErr: []string{`unknown GPU model "H300"`, "known: A10, A100, B200, G2, G3, H100, H200, L4, P100, T4, V100M16, V100M32"},
		},
		"kubeconfig and policy": {
			args:    []string{"--kubeconfig", "kc", "--policy", migData + "mig.yaml"},
			wantErr: []string{"excludes --policy"},
		},
		"plot with policy": {
			args:    []string{"--policy", migData + "mig.yaml", "--plot", "x.svg"},
			wantErr: []string{"--plot"},
		},
		"same policy twice": {
			args:    []string{"--nodes", migData + "nodes.csv", "--pods", migData + "pods.csv", "--policy", migData + "mig.yaml", "--policy", migData + "mig.yaml"},
			wantErr: []string{"two policy files named mig"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := runCommand(t, newSimCommand(), tc.args...)
			require.Error(t, err, out)
			for _, w := range tc.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSimHelpExplainsPolicies(t *testing.T) {
	cmd := newSimCommand()
	for _, flag := range []string{"--nodes", "--policy", "--kubeconfig"} {
		assert.Contains(t, cmd.UsageString(), flag)
	}
	for _, want := range []string{"mig_profile", "H200", "firstAvailable", "held"} {
		assert.Contains(t, cmd.Long, want)
	}
}
