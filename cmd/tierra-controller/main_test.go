package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/internal/cli"
	"github.com/tierra-gpu/tierra/pkg/controller"
)

func parseWith(args []string, env map[string]string, out *bytes.Buffer) (controller.Config, error) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return parseFlags(cli.NewFlagSet("tierra-controller", lookup, out), args)
}

func TestParseFlags(t *testing.T) {
	defaults := controller.Config{PolicyName: "default", Resync: 10 * time.Minute, KubeAPIQPS: 20,
		KubeAPIBurst: 40, StatusDelay: time.Second, MetricsAddr: ":8080"}
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    controller.Config
		wantErr string
	}{
		"defaults": {want: defaults},
		"environment": {
			env: map[string]string{"KUBECONFIG": "/k", "TIERRA_POLICY_NAME": "p", "TIERRA_RESYNC": "0s",
				"TIERRA_KUBE_API_QPS": "5.5", "TIERRA_KUBE_API_BURST": "9", "TIERRA_STATUS_DELAY": "2s",
				"TIERRA_METRICS_ADDR": ""},
			want: controller.Config{Kubeconfig: "/k", PolicyName: "p", KubeAPIQPS: 5.5, KubeAPIBurst: 9,
				StatusDelay: 2 * time.Second},
		},
		"flag beats environment": {
			args: []string{"--policy-name=flag", "--kube-api-burst=7", "--metrics-addr=127.0.0.1:9090", "-v=3"},
			env:  map[string]string{"TIERRA_POLICY_NAME": "env", "TIERRA_METRICS_ADDR": ":1", "TIERRA_KUBE_API_BURST": "x"},
			want: controller.Config{PolicyName: "flag", Resync: 10 * time.Minute, KubeAPIQPS: 20,
				KubeAPIBurst: 7, StatusDelay: time.Second, MetricsAddr: "127.0.0.1:9090"},
		},
		"webhook": {
			env: map[string]string{"TIERRA_WEBHOOK_ADDR": ":9443", "TIERRA_WEBHOOK_CERT_DIR": "/etc/tierra/webhook"},
			want: func() controller.Config {
				c := defaults
				c.WebhookAddr, c.WebhookCertDir = ":9443", "/etc/tierra/webhook"
				return c
			}(),
		},
		"malformed environment": {
			env:     map[string]string{"TIERRA_RESYNC": "often"},
			wantErr: `environment variable TIERRA_RESYNC="often" (--resync): want a duration such as 90s, 10m or 1h30m`,
		},
		"malformed flag":      {args: []string{"--kube-api-qps=lots"}, wantErr: `--kube-api-qps "lots": want a number`},
		"negative burst":      {args: []string{"--kube-api-burst=-1"}, wantErr: `--kube-api-burst "-1": want a value of 0 or more`},
		"webhook without tls": {args: []string{"--webhook-addr=:9443"}, wantErr: "webhook-addr needs webhook-cert-dir"},
		"stray argument":      {args: []string{"run"}, wantErr: "unexpected arguments"},
		"unknown log format":  {args: []string{"--logging-format=xml"}, wantErr: "Unsupported log format"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseWith(tc.args, tc.env, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, cli.ExitUsage, cli.ExitCode(cli.Usage(err)), "what cli.Main makes of it")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestDefaultsOnce: the flags' defaults are controller.Config's own.
func TestDefaultsOnce(t *testing.T) {
	got, err := parseWith(nil, nil, &bytes.Buffer{})
	require.NoError(t, err)
	want := controller.Config{Resync: got.Resync, MetricsAddr: got.MetricsAddr}
	want.Default()
	assert.Equal(t, want, got)
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseWith([]string{"--help"}, nil, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, cli.ExitOK, cli.ExitCode(err))
	help := out.String()
	assert.Contains(t, help, "tierra-controller keeps the tier DeviceClasses")
	for _, s := range []string{"--kubeconfig string", "[KUBECONFIG]", "--policy-name", "[TIERRA_POLICY_NAME]", "--resync",
		"[TIERRA_RESYNC]", "[TIERRA_KUBE_API_QPS]", "[TIERRA_KUBE_API_BURST]", "[TIERRA_STATUS_DELAY]", "[TIERRA_WEBHOOK_ADDR]",
		"[TIERRA_WEBHOOK_CERT_DIR]", "[TIERRA_METRICS_ADDR]", "even when it is empty", "--logging-format"} {
		assert.Contains(t, help, s)
	}
	assert.Less(t, strings.Index(help, "--metrics-addr"), strings.Index(help, "Logging flags"))
	assert.Greater(t, strings.Index(help, "--logging-format"), strings.Index(help, "Logging flags"))
}
