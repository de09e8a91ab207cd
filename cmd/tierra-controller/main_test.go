package main

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/controller"
)

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    controller.Config
		wantErr string
	}{
		"defaults": {
			want: controller.Config{PolicyName: "default", Resync: 10 * time.Minute, KubeAPIQPS: 20,
				KubeAPIBurst: 40, StatusDelay: time.Second, MetricsAddr: ":8080"},
		},
		"environment": {
			env: map[string]string{"KUBECONFIG": "/k", "TIERRA_POLICY_NAME": "p", "TIERRA_RESYNC": "0s",
				"TIERRA_KUBE_API_QPS": "5.5", "TIERRA_KUBE_API_BURST": "9", "TIERRA_STATUS_DELAY": "2s",
				"TIERRA_METRICS_ADDR": ""},
			want: controller.Config{Kubeconfig: "/k", PolicyName: "p", KubeAPIQPS: 5.5, KubeAPIBurst: 9,
				StatusDelay: 2 * time.Second},
		},
		"flag beats environment": {
			args: []string{"--policy-name=flag", "--kube-api-burst=7", "--metrics-addr=127.0.0.1:9090"},
			env:  map[string]string{"TIERRA_POLICY_NAME": "env", "TIERRA_METRICS_ADDR": ":1"},
			want: controller.Config{PolicyName: "flag", Resync: 10 * time.Minute, KubeAPIQPS: 20,
				KubeAPIBurst: 7, StatusDelay: time.Second, MetricsAddr: "127.0.0.1:9090"},
		},
		"malformed environment": {
			env:     map[string]string{"TIERRA_RESYNC": "often"},
			wantErr: "TIERRA_RESYNC",
		},
		"stray argument": {
			args:    []string{"run"},
			wantErr: "unexpected arguments",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, err := parseFlags(tc.args, lookup)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHelp(t *testing.T) {
	_, err := parseFlags([]string{"--help"}, func(string) (string, bool) { return "", false })
	require.ErrorIs(t, err, flag.ErrHelp)
}
