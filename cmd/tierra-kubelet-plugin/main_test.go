package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/plugin"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    plugin.Config
		wantErr string
	}{
		"defaults": {
			args: []string{"--node-name=n1"},
			want: plugin.Config{NodeName: "n1", StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
				PluginDataDir: "/var/lib/kubelet/plugins/gpu.tierra.dev", RegistrarDir: "/var/lib/kubelet/plugins_registry",
				TierPolicy: "default", QPS: 500, Burst: 1000, MPSControlCommand: "nvidia-cuda-mps-control", NvidiaSMICommand: "nvidia-smi", SharingRunner: "auto", ClaimGCInterval: plugin.DefaultClaimGCInterval},
		},
		"environment": {
			env: map[string]string{"TIERRA_NODE_NAME": "n2", "TIERRA_MACHINE": "fake:dgxh200", "TIERRA_KUBE_API_QPS": "800"},
			want: plugin.Config{NodeName: "n2", Machine: "fake:dgxh200", StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
				PluginDataDir: plugin.DefaultPluginDataDir, RegistrarDir: plugin.DefaultRegistrarDir, TierPolicy: "default", QPS: 800, Burst: 1000, MPSControlCommand: "nvidia-cuda-mps-control", NvidiaSMICommand: "nvidia-smi", SharingRunner: "auto", ClaimGCInterval: plugin.DefaultClaimGCInterval},
		},
		"flag beats environment": {
			args: []string{"--node-name=n3"},
			env:  map[string]string{"TIERRA_NODE_NAME": "n2"},
			want: plugin.Config{NodeName: "n3", StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
				PluginDataDir: plugin.DefaultPluginDataDir, RegistrarDir: plugin.DefaultRegistrarDir, TierPolicy: "default", QPS: 500, Burst: 1000, MPSControlCommand: "nvidia-cuda-mps-control", NvidiaSMICommand: "nvidia-smi", SharingRunner: "auto", ClaimGCInterval: plugin.DefaultClaimGCInterval},
		},
		"sharing commands": {
			args: []string{"--node-name=n4", "--mps-control-command=/opt/mps", "--sharing-runner=exec"},
			env:  map[string]string{"TIERRA_NVIDIA_SMI_COMMAND": "/opt/smi", "TIERRA_SHARING_RUNNER": "fake"},
			want: plugin.Config{NodeName: "n4", StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
				PluginDataDir: plugin.DefaultPluginDataDir, RegistrarDir: plugin.DefaultRegistrarDir, TierPolicy: "default", QPS: 500, Burst: 1000,
				MPSControlCommand: "/opt/mps", NvidiaSMICommand: "/opt/smi", SharingRunner: plugin.SharingRunnerExec, ClaimGCInterval: plugin.DefaultClaimGCInterval},
		},
		"bad sharing runner": {args: []string{"--node-name=n", "--sharing-runner=docker"}, wantErr: `"docker" (--sharing-runner or TIERRA_SHARING_RUNNER): want auto, exec or fake`},
		"no node name":       {wantErr: "TIERRA_NODE_NAME"},
		"bad qps":            {args: []string{"--node-name=n", "--kube-api-qps=lots"}, wantErr: "--kube-api-qps"},
		"claim GC disabled": {
			args: []string{"--node-name=n5"},
			env:  map[string]string{"TIERRA_CLAIM_GC_INTERVAL": "-1s"},
			want: plugin.Config{NodeName: "n5", StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
				PluginDataDir: plugin.DefaultPluginDataDir, RegistrarDir: plugin.DefaultRegistrarDir, TierPolicy: "default", QPS: 500, Burst: 1000,
				MPSControlCommand: "nvidia-cuda-mps-control", NvidiaSMICommand: "nvidia-smi", SharingRunner: "auto", ClaimGCInterval: -time.Second},
		},
		"bad claim GC interval": {args: []string{"--node-name=n", "--claim-gc-interval=often"}, wantErr: `--claim-gc-interval "often": want a duration`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := parse(tc.args, func(k string) string { return tc.env[k] }, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg)
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parse([]string{"--help"}, func(string) string { return "" }, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, s := range []string{"-node-name", "TIERRA_NODE_NAME", "-machine", "fake:<name>", "-state-dir", "-cdi-dir",
		"-plugin-data-dir", "-registrar-dir", "-kubeconfig", "in-cluster", "-tier-policy", "-tier-policy-file", "-kube-api-qps", "-kube-api-burst",
		"-mps-control-command", "TIERRA_MPS_CONTROL_COMMAND", "-nvidia-smi-command", "TIERRA_NVIDIA_SMI_COMMAND", "-sharing-runner", "TIERRA_SHARING_RUNNER"} {
		assert.Contains(t, out.String(), s)
	}
	help := out.String()
	assert.Contains(t, help, "tierra-kubelet-plugin is the node half of Tierra")
	assert.Less(t, strings.Index(help, "-node-name"), strings.Index(help, "Logging flags (klog):"),
		"our flags come before klog's")
	assert.Greater(t, strings.Index(help, "-v value"), strings.Index(help, "Logging flags (klog):"))
}
