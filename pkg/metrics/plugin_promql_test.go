package metrics

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promtoolPath is make prometheus's promtool (_output/tools), else one on
// PATH; "" when there is none.
func promtoolPath() string {
	if found, _ := filepath.Glob("../../_output/tools/prometheus-*/usr/bin/promtool"); len(found) > 0 {
		if abs, err := filepath.Abs(found[len(found)-1]); err == nil {
			return abs
		}
	}
	path, _ := exec.LookPath("promtool")
	return path
}

// TestDCGMJoinPromQL runs the README's utilization-per-tenant join against
// dcgm-exporter-shaped series (testdata/dcgm_join_test.yml): a whole GPU
// whose claim has two pods, a time-sliced GPU with two claims of one
// tenant, MIG instances of two tenants on one GPU, a GPU nobody claimed.
func TestDCGMJoinPromQL(t *testing.T) {
	promtool := promtoolPath()
	if promtool == "" {
		t.Skip("no promtool: run make prometheus")
	}
	cmd := exec.Command(promtool, "test", "rules", "dcgm_join_test.yml")
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
}
