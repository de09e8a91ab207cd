package observability

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

// A corrupt checkpoint record makes the restarted plugin quarantine it:
// its counter reads 1 and the shipped TierraCheckpointQuarantined alert
// fires in the live Prometheus; after the next clean restart the counter
// is back to 0 and the alert resolves.
func TestPrometheusCheckpointQuarantineAlert(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	stackUp(t)
	const node = "dgx-h200-train"
	n, instance := env.nodes[node], env.metrics[node]
	quarantines := `tierra_plugin_checkpoint_quarantines_total{instance="` + instance + `"}`
	alert := `ALERTS{alertname="TierraCheckpointQuarantined",alertstate="firing",instance="` + instance + `"}`
	waitFor(ctx, t, quarantines, one(0))
	waitFor(ctx, t, alert, func(v model.Vector) bool { return len(v) == 0 })

	record := filepath.Join(n.StateDir(), "checkpoint", "00000000-0000-4000-8000-00000000dead.json")
	require.NoError(t, os.WriteFile(record, []byte(`{"torn`), 0o600))
	require.NoError(t, n.RestartPlugin(ctx))
	waitFor(ctx, t, quarantines, one(1))
	v := waitFor(ctx, t, alert, func(v model.Vector) bool { return len(v) == 1 })
	require.Equal(t, model.LabelValue("warning"), v[0].Metric["severity"])
	_, err := os.Stat(record)
	require.ErrorIs(t, err, os.ErrNotExist, "the record was moved aside")

	require.NoError(t, n.RestartPlugin(ctx))
	waitFor(ctx, t, quarantines, one(0))
	waitFor(ctx, t, alert, func(v model.Vector) bool { return len(v) == 0 })
}
