package observability

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/report"
	"github.com/tierra-gpu/tierra/test/stack"
)

// tierraReport builds the tierra CLI (once per call; the build cache makes
// a second one quick) and runs `tierra report --prometheus <url>` against
// the test Prometheus, in the output format given ("table" or "json").
func tierraReport(ctx context.Context, t *testing.T, output string) string {
	t.Helper()
	bin := filepath.Join(env.dir, "bin", "tierra")
	require.NoError(t, stack.GoBuild(ctx, env.root, "./cmd/tierra", bin))
	out, err := exec.CommandContext(ctx, bin, "report", "--prometheus", env.prom.URL, "-o", output).CombinedOutput()
	require.NoError(t, err, "tierra report: %s", out)
	return string(out)
}

// reportRow is the tenant's row of tier in `tierra report -o json`.
func reportRow(ctx context.Context, t *testing.T, tenant, tier string) (report.Row, string) {
	t.Helper()
	var rep report.Report
	out := tierraReport(ctx, t, "json")
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "tierra report -o json: %s", out)
	for _, r := range rep.Rows {
		if r.Tenant == tenant && r.Tier == tier {
			return r, out
		}
	}
	require.Failf(t, "no row", "tierra report has no row for tenant %s tier %s: %s", tenant, tier, out)
	return report.Row{}, out
}

// tableLine is the table's line for tenant and tier.
func tableLine(table, tenant, tier string) string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == tenant && f[1] == tier {
			return line
		}
	}
	return ""
}
