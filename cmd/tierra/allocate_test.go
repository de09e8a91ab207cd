//go:build cgo

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/plan"
)

func runCommand(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestAllocateDemoScenarios(t *testing.T) {
	out, err := runCommand(t, newAllocateCommand(), "--cluster", "../../demo/cluster.yaml",
		"--policy", "../../demo/tierpolicy.yaml", "-o", "json", "../../demo/scenarios")
	require.NoError(t, err, out)
	var res plan.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	byClaim := map[string]plan.Placement{}
	for _, p := range res.Placements {
		byClaim[p.Claim] = p
	}
	require.Len(t, byClaim, 7)
	assert.Equal(t, "dgx-h200-train", byClaim["research/llm-pretrain"].Node)
	assert.Len(t, byClaim["research/llm-pretrain"].Devices, 4)
	assert.Equal(t, "dgx-h200-infer", byClaim["product/chat-api"].Node)
	assert.Equal(t, []string{"gpu-0-1g-35gb-6"}, byClaim["product/chat-api"].Devices, "the cheapest slice with 20Gi")
	assert.Equal(t, []string{"gpu-0-tenant-research"}, byClaim["research/notebook-bob"].Devices, "dev notebooks share one GPU, in research's slot")
	assert.Equal(t, byClaim["research/notebook-alice"].Devices, byClaim["research/notebook-bob"].Devices)
	assert.EqualValues(t, 80_000, byClaim["research/notebook-bob"].Cost, "a quarter of an L4 at $0.80 less 60% spot")
	assert.Equal(t, "l4-serve", byClaim["product/embeddings"].Node, "MPS replicas on the serving node")
	assert.Equal(t, []string{"gpu-0-tenant-product"}, byClaim["product/embeddings"].Devices)
	for claim, p := range byClaim {
		assert.NotEmpty(t, p.Node, "%s must be placed", claim)
	}
}

func TestAllocateRefusesMIGChangesOnRealGPUs(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.yaml")
	require.NoError(t, os.WriteFile(cluster, []byte("nodes: [{name: a, migEnabled: true}]"), 0o600))
	_, err := runCommand(t, newAllocateCommand(), "--cluster", cluster, "--policy", "../../demo/tierpolicy.yaml", "../../demo/scenarios")
	require.ErrorContains(t, err, "migEnabled: only allowed for fake machines")
}

func TestAllocateRejectsUnknownOutput(t *testing.T) {
	_, err := runCommand(t, newAllocateCommand(), "-o", "xml", "x.yaml")
	require.ErrorContains(t, err, `--output "xml": want one of table, json`)
}
