package observability

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/stack"
)

// rulesDir holds the rules the chart ships and their promtool unit tests.
const rulesDir = "deployments/helm/tierra/rules"

// promtool runs promtool with args in the rules directory and returns its
// output; a failure carries the output.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := stack.PrometheusTool("promtool")
	require.NoError(t, err)
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join(root, rulesDir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %v:\n%s", args, out)
	return string(out)
}

// TestRulesCheck: promtool accepts the shipped rules file (syntax, PromQL,
// templates, naming).
func TestRulesCheck(t *testing.T) {
	out := promtool(t, "check", "rules", "tierra.rules.yaml")
	assert.Contains(t, out, "SUCCESS")
}

// TestRulesUnit runs the rules' unit tests (tierra.rules.test.yaml): input
// series and the recorded values and alerts the rules must produce.
func TestRulesUnit(t *testing.T) {
	out := promtool(t, "test", "rules", "tierra.rules.test.yaml")
	assert.Contains(t, out, "SUCCESS")
}
