package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/internal/cli"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// defaults is the Config of --node-name=node and nothing else.
func defaults(node string) plugin.Config {
	return plugin.Config{NodeName: node, StateDir: plugin.DefaultStateDir, CDIDir: plugin.DefaultCDIDir,
		PluginDataDir: "/var/lib/kubelet/plugins/gpu.tierra.dev", RegistrarDir: "/var/lib/kubelet/plugins_registry",
		TierPolicy: "default", QPS: 500, Burst: 1000, MPSControlCommand: "nvidia-cuda-mps-control", NvidiaSMICommand: "nvidia-smi",
		SharingRunner: "auto", ClaimGCInterval: plugin.DefaultClaimGCInterval,
		MPSDaemonCommand: "/usr/bin/tierra-kubelet-plugin mps-daemon", MPSDaemonPriorityClass: "system-node-critical",
		MetricsAddress: ":8080", ProcRoot: "/proc", IdleThreshold: 0.05, IdleWindow: 2 * time.Hour, UsageInterval: time.Minute}
}

func parseWith(args []string, env map[string]string, out *bytes.Buffer) (plugin.Config, error) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return parse(cli.NewFlagSet("tierra-kubelet-plugin", lookup, out), args)
}

func with(c plugin.Config, edit func(*plugin.Config)) plugin.Config {
	edit(&c)
	return c
}

func TestParse(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    plugin.Config
		wantErr string
	}{
		"defaults": {args: []string{"--node-name=n1"}, want: defaults("n1")},
		"environment": {
			env:  map[string]string{"TIERRA_NODE_NAME": "n2", "TIERRA_MACHINE": "fake:dgxh200", "TIERRA_KUBE_API_QPS": "800"},
			want: with(defaults("n2"), func(c *plugin.Config) { c.Machine, c.QPS = "fake:dgxh200", 800 }),
		},
		"flag beats environment": {
			args: []string{"--node-name=n3"},
			env:  map[string]string{"TIERRA_NODE_NAME": "n2"},
			want: defaults("n3"),
		},
		"sharing commands": {
			args: []string{"--node-name=n4", "--mps-control-command=/opt/mps", "--sharing-runner=exec"},
			env:  map[string]string{"TIERRA_NVIDIA_SMI_COMMAND": "/opt/smi", "TIERRA_SHARING_RUNNER": "fake"},
			want: with(defaults("n4"), func(c *plugin.Config) {
				c.MPSControlCommand, c.NvidiaSMICommand, c.SharingRunner = "/opt/mps", "/opt/smi", plugin.SharingRunnerExec
			}),
		},
		"MPS daemon pods": {
			args: []string{"--node-name=n6", "--mps-daemon-image=tierra:1", "--mps-daemon-priority-class="},
			env:  map[string]string{"TIERRA_NAMESPACE": "tierra-system", "TIERRA_MPS_DAEMON_RUNTIME_CLASS": "nvidia"},
			want: with(defaults("n6"), func(c *plugin.Config) {
				c.MPSDaemonImage, c.Namespace, c.MPSDaemonRuntimeClass, c.MPSDaemonPriorityClass = "tierra:1", "tierra-system", "nvidia", ""
			}),
		},
		"MPS daemon pods need the namespace": {args: []string{"--node-name=n", "--mps-daemon-image=tierra:1"}, wantErr: "namespace is required with --mps-daemon-image"},
		"bad sharing runner":                 {args: []string{"--node-name=n", "--sharing-runner=docker"}, wantErr: `"docker" (--sharing-runner or TIERRA_SHARING_RUNNER): want auto, exec or fake`},
		"no node name":                       {wantErr: "TIERRA_NODE_NAME"},
		"bad qps":                            {args: []string{"--node-name=n", "--kube-api-qps=lots"}, wantErr: "--kube-api-qps"},
		"claim GC disabled": {
			args: []string{"--node-name=n5"},
			env:  map[string]string{"TIERRA_CLAIM_GC_INTERVAL": "-1s"},
			want: with(defaults("n5"), func(c *plugin.Config) { c.ClaimGCInterval = -time.Second }),
		},
		"metrics address from the environment": {
			args: []string{"--node-name=n7"},
			env:  map[string]string{"TIERRA_METRICS_ADDRESS": "127.0.0.1:9400"},
			want: with(defaults("n7"), func(c *plugin.Config) { c.MetricsAddress = "127.0.0.1:9400" }),
		},
		"no metrics": {
			args: []string{"--node-name=n8", "--metrics-address="},
			want: with(defaults("n8"), func(c *plugin.Config) { c.MetricsAddress = "" }),
		},
		"bad claim GC interval": {args: []string{"--node-name=n", "--claim-gc-interval=often"}, wantErr: `--claim-gc-interval "often": want a duration`},
		"per-pod GPU use": {
			args: []string{"--node-name=n9", "--idle-threshold=0.1", "--idle-window=30m", "--usage-interval=10s"},
			env:  map[string]string{"TIERRA_PROC_ROOT": "/host/proc"},
			want: with(defaults("n9"), func(c *plugin.Config) {
				c.ProcRoot, c.IdleThreshold, c.IdleWindow, c.UsageInterval = "/host/proc", 0.1, 30*time.Minute, 10*time.Second
			}),
		},
		"per-pod GPU use off": {
			args: []string{"--node-name=n10", "--proc-root="},
			want: with(defaults("n10"), func(c *plugin.Config) { c.ProcRoot = "" }),
		},
		"idle threshold over 1":     {args: []string{"--node-name=n", "--idle-threshold=5"}, wantErr: `--idle-threshold "5": want an SM share greater than 0 and at most 1`},
		"idle threshold 0":          {args: []string{"--node-name=n", "--idle-threshold=0"}, wantErr: `--idle-threshold "0": want an SM share greater than 0`},
		"idle threshold a word":     {args: []string{"--node-name=n"}, env: map[string]string{"TIERRA_IDLE_THRESHOLD": "low"}, wantErr: `environment variable TIERRA_IDLE_THRESHOLD="low" (--idle-threshold): want a number`},
		"idle threshold env over 1": {args: []string{"--node-name=n"}, env: map[string]string{"TIERRA_IDLE_THRESHOLD": "2"}, wantErr: `TIERRA_IDLE_THRESHOLD="2" (--idle-threshold): want an SM share`},
		"bad fsync":                 {args: []string{"--node-name=n", "--checkpoint-fsync=sometimes"}, wantErr: `--checkpoint-fsync "sometimes": want true or false`},
		"bad burst from env":        {args: []string{"--node-name=n"}, env: map[string]string{"TIERRA_KUBE_API_BURST": "1e3"}, wantErr: `TIERRA_KUBE_API_BURST="1e3" (--kube-api-burst): want an integer`},
		"stray argument":            {args: []string{"--node-name=n", "serve"}, wantErr: "unexpected arguments"},
		"fsync": {
			args: []string{"--node-name=n11", "--checkpoint-fsync"},
			want: with(defaults("n11"), func(c *plugin.Config) { c.CheckpointFsync = true }),
		},
		// An empty variable that is set means what an empty flag means:
		// the chart turns metrics and per-pod GPU use off this way.
		"empty environment variables": {
			args: []string{"--node-name=n12"},
			env:  map[string]string{"TIERRA_METRICS_ADDRESS": "", "TIERRA_PROC_ROOT": "", "TIERRA_MPS_DAEMON_PRIORITY_CLASS": ""},
			want: with(defaults("n12"), func(c *plugin.Config) { c.MetricsAddress, c.ProcRoot, c.MPSDaemonPriorityClass = "", "", "" }),
		},
		"idle window negative": {args: []string{"--node-name=n", "--idle-window=-1h"}, wantErr: `--idle-window "-1h": want a positive duration`},
		"usage interval zero":  {args: []string{"--node-name=n", "--usage-interval=0s"}, wantErr: `--usage-interval "0s": want a positive duration`},
		"idle window a number": {args: []string{"--node-name=n", "--idle-window=7200"}, wantErr: `--idle-window "7200": want a duration such as 90s`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseWith(tc.args, tc.env, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, cli.ExitUsage, cli.ExitCode(cli.Usage(err)), "what cli.Main makes of it")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg)
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parseWith([]string{"--help"}, nil, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, cli.ExitOK, cli.ExitCode(err))
	for _, s := range []string{"-node-name", "TIERRA_NODE_NAME", "-machine", "fake:<name>", "-state-dir", "-cdi-dir",
		"-plugin-data-dir", "-registrar-dir", "-kubeconfig", "in-cluster", "-tier-policy", "-tier-policy-file", "-kube-api-qps", "-kube-api-burst",
		"-mps-control-command", "TIERRA_MPS_CONTROL_COMMAND", "-nvidia-smi-command", "TIERRA_NVIDIA_SMI_COMMAND", "-sharing-runner", "TIERRA_SHARING_RUNNER",
		"-mps-daemon-image", "TIERRA_MPS_DAEMON_IMAGE", "-metrics-address", "TIERRA_METRICS_ADDRESS", "-namespace", "TIERRA_NAMESPACE", "mps-daemon --help",
		"-proc-root", "TIERRA_PROC_ROOT", "/host/proc", "-idle-threshold", "TIERRA_IDLE_THRESHOLD", "-idle-window", "TIERRA_IDLE_WINDOW", "GPUIdle", "[TIERRA_CHECKPOINT_FSYNC]", "[TIERRA_KUBE_API_QPS]", "[TIERRA_CLAIM_GC_INTERVAL]",
		"[TIERRA_FAKE_MIG_NODES]", "[TIERRA_USAGE_INTERVAL]", "even when it is empty", "--logging-format string"} {
		assert.Contains(t, out.String(), s)
	}
	help := out.String()
	assert.Contains(t, help, "tierra-kubelet-plugin is the node half of Tierra")
	assert.Less(t, strings.Index(help, "--checkpoint-fsync"), strings.Index(help, "Logging flags"),
		"our flags come before the logging flags")
	assert.Greater(t, strings.Index(help, "--v value"), strings.Index(help, "Logging flags"))
	assert.Greater(t, strings.Index(help, "--logging-format"), strings.Index(help, "Logging flags"))
}

func TestParseMPSDaemon(t *testing.T) {
	o, probe, err := parseMPSDaemon([]string{"--gpu=GPU-1", "--dir=/var/lib/tierra/mps/GPU-1", "--control-command=/opt/mps",
		"--active-thread-percentage=30", "--pinned-device-memory-mib=2048"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.False(t, probe)
	assert.Equal(t, "GPU-1", o.Daemon.GPUUUID)
	assert.Equal(t, "/opt/mps", o.ControlCommand)
	assert.Equal(t, sharing.MPSLimits{ActiveThreadPercentage: 30, PinnedDeviceMemoryMiB: 2048}, o.Daemon.Limits)

	// What the plugin puts in the pod is what the command reads.
	d := sharing.Daemon{GPUUUID: "GPU-2", Dir: "/d", Limits: sharing.MPSLimits{ActiveThreadPercentage: 10}}
	o, probe, err = parseMPSDaemon(sharing.SupervisorArgs(d, "nvidia-cuda-mps-control", true), &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, probe)
	assert.Equal(t, "GPU-2", o.Daemon.GPUUUID)
	o, _, err = parseMPSDaemon(sharing.SupervisorArgs(d, "nvidia-cuda-mps-control", false), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, d, o.Daemon)

	_, _, err = parseMPSDaemon([]string{"--active-thread-percentage=150"}, &bytes.Buffer{})
	for _, want := range []string{"--gpu is required", "--dir is required", "--active-thread-percentage 150: want 1-100"} {
		assert.ErrorContains(t, err, want)
	}
	var help bytes.Buffer
	_, _, err = parseMPSDaemon([]string{"--help"}, &help)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, help.String(), "outlives plugin restarts")
}

func TestMPSDaemonExitCodes(t *testing.T) {
	err := runMPSDaemon(context.Background(), []string{"--gpu=GPU-1"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "--dir is required")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	err = runMPSDaemon(context.Background(), []string{"--help"}, &bytes.Buffer{}, &bytes.Buffer{})
	assert.Equal(t, cli.ExitOK, cli.ExitCode(err))
}
