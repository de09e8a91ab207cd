package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/sharing"
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

// --sharing-runner picks the Runner: auto keeps today's choice by machine.
func TestConfigRunner(t *testing.T) {
	tests := map[string]struct {
		cfg      Config
		wantExec bool
	}{
		"auto on a fake machine records":   {cfg: Config{Machine: "fake:dgxh200", SharingRunner: SharingRunnerAuto}},
		"auto on real GPUs execs":          {cfg: Config{SharingRunner: SharingRunnerAuto}, wantExec: true},
		"exec on a fake machine execs":     {cfg: Config{Machine: "fake:dgxh200", SharingRunner: SharingRunnerExec}, wantExec: true},
		"fake on real GPUs records":        {cfg: Config{SharingRunner: SharingRunnerFake}},
		"unset is auto (fake machine)":     {cfg: Config{Machine: "fake:l4x4"}},
		"unset is auto (real GPUs, execs)": {cfg: Config{}, wantExec: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, isExec := configRunner(tc.cfg).(sharing.ExecRunner)
			assert.Equal(t, tc.wantExec, isExec)
		})
	}
}

func TestConfigValidateSharingRunner(t *testing.T) {
	cfg := Config{NodeName: "n", SharingRunner: "docker"}
	assert.ErrorContains(t, cfg.Validate(), "want auto, exec or fake")
	cfg.Default()
	cfg.SharingRunner = ""
	cfg.Default()
	assert.Equal(t, SharingRunnerAuto, cfg.SharingRunner)
	assert.NoError(t, cfg.Validate())
}
