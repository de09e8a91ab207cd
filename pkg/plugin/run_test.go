package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

// A plugin asked to stop while it is still starting exits cleanly (a
// DaemonSet rollout may replace a pod at once); a start that fails on its
// own is an error.
func TestRunStoppedWhileStartingIsClean(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	cfg := Config{NodeName: "n", Machine: "fake:l4x4", Kubeconfig: kubeconfig, StateDir: t.TempDir(), CDIDir: t.TempDir()}

	assert.Error(t, Run(ctx, cfg), "nothing listens: the start fails")
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	assert.NoError(t, Run(stopped, cfg), "stopped while starting is a clean exit")
}
