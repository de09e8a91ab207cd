package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const (
	controllerMetrics = controllerName + "-metrics"
	pluginMetrics     = pluginName + "-metrics"
)

// metricsWorkloads renders the chart and returns the controller's and the
// plugin's pod templates.
func metricsWorkloads(t *testing.T, objs []*unstructured.Unstructured) (controller, plugin corev1.PodTemplateSpec) {
	t.Helper()
	var dep appsv1.Deployment
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "Deployment", controllerName).Object, &dep))
	var ds appsv1.DaemonSet
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "DaemonSet", pluginName).Object, &ds))
	return dep.Spec.Template, ds.Spec.Template
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func TestChartMetricsPortsAndServices(t *testing.T) {
	c := newChart(t)
	tests := map[string]struct {
		set      []string
		wantPort int32 // 0: no metrics at all
	}{
		"defaults":   {wantPort: 8080},
		"other port": {set: []string{"metrics.port=9100"}, wantPort: 9100},
		"off":        {set: []string{"metrics.enabled=false"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := c.template(tc.set...)
			require.NoError(t, err)
			objs := decode(t, out)
			ctrl, plugin := metricsWorkloads(t, objs)
			addr := ""
			if tc.wantPort != 0 {
				addr = ":" + jsonString(tc.wantPort)
			}
			assert.Equal(t, addr, envValue(ctrl.Spec.Containers[0], "TIERRA_METRICS_ADDR"), "controller's metrics address")
			assert.Equal(t, addr, envValue(plugin.Spec.Containers[0], "TIERRA_METRICS_ADDRESS"), "plugin's metrics address")
			assert.Equal(t, tc.wantPort, containerPort(ctrl.Spec.Containers[0], "metrics"))
			assert.Equal(t, tc.wantPort, containerPort(plugin.Spec.Containers[0], "metrics"))
			assert.NotZero(t, containerPort(ctrl.Spec.Containers[0], "webhook"), "the webhook port stays")

			services := map[string]corev1.Service{}
			for _, o := range objs {
				if o.GetKind() == "Service" {
					var s corev1.Service
					require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &s))
					services[s.Name] = s
				}
			}
			if tc.wantPort == 0 {
				assert.NotContains(t, services, controllerMetrics)
				assert.NotContains(t, services, pluginMetrics)
				return
			}
			for svc, pod := range map[string]corev1.PodTemplateSpec{controllerMetrics: ctrl, pluginMetrics: plugin} {
				require.Contains(t, services, svc)
				s := services[svc]
				assert.True(t, labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)), "%s selects its component's pods", svc)
				require.Len(t, s.Spec.Ports, 1)
				assert.Equal(t, tc.wantPort, s.Spec.Ports[0].Port)
				assert.Equal(t, "metrics", s.Spec.Ports[0].TargetPort.String())
			}
			assert.Equal(t, corev1.ClusterIPNone, services[pluginMetrics].Spec.ClusterIP, "every plugin pod is a target of its own")
			assert.Empty(t, services[controllerMetrics].Spec.ClusterIP)
			for _, k := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
				for _, o := range objs {
					assert.NotEqual(t, k, o.GetKind(), "%s is opt-in", k)
				}
			}
		})
	}
}

// TestChartPodGPUUse: per-pod GPU use reads the host's processes through
// the host's /proc, mounted read-only at /host/proc (the plugin's proc
// root), never through hostPID; with the feature or the metrics off the
// plugin gets neither the mount nor a proc root.
func TestChartPodGPUUse(t *testing.T) {
	c := newChart(t)
	tests := map[string]struct {
		set          []string
		wantProcRoot string
	}{
		"real GPUs":    {wantProcRoot: "/host/proc"},
		"fake machine": {set: []string{"plugin.machine=fake:dgxh200"}, wantProcRoot: "/host/proc"},
		"off":          {set: []string{"plugin.podUsage.enabled=false"}},
		"no metrics":   {set: []string{"metrics.enabled=false"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := c.template(tc.set...)
			require.NoError(t, err)
			_, plugin := metricsWorkloads(t, decode(t, out))
			assert.False(t, plugin.Spec.HostPID)
			ctr := plugin.Spec.Containers[0]
			assert.Equal(t, tc.wantProcRoot, envValue(ctr, "TIERRA_PROC_ROOT"))
			var mounted bool
			for _, m := range ctr.VolumeMounts {
				if m.MountPath == "/host/proc" {
					mounted = true
					assert.True(t, m.ReadOnly, "the host's /proc is mounted read-only")
				}
			}
			assert.Equal(t, tc.wantProcRoot != "", mounted, "the host's /proc mounted")
			if tc.wantProcRoot != "" {
				assert.Equal(t, "0.05", envValue(ctr, "TIERRA_IDLE_THRESHOLD"))
				assert.Equal(t, "2h", envValue(ctr, "TIERRA_IDLE_WINDOW"))
			}
		})
	}
	_, err := c.template("plugin.podUsage.idleThreshold=1.5")
	assert.ErrorContains(t, err, "idleThreshold", "the schema bounds the threshold")
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestChartMonitors: each monitor selects exactly its component's metrics
// Service (or pods), scrapes the port named metrics with honorLabels, and
// carries the labels a Prometheus's selector asks for.
func TestChartMonitors(t *testing.T) {
	c := newChart(t)
	for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
		t.Run(kind, func(t *testing.T) {
			key := map[string]string{"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}[kind]
			out, err := c.template("metrics."+key+".enabled=true", "metrics."+key+".labels.release=kps",
				"metrics."+key+".interval=15s", "metrics."+key+".scrapeTimeout=10s")
			require.NoError(t, err)
			objs := decode(t, out)
			ctrl, plugin := metricsWorkloads(t, objs)
			for name, pods := range map[string]corev1.PodTemplateSpec{controllerName: ctrl, pluginName: plugin} {
				m := find(t, objs, kind, name)
				assert.Equal(t, "monitoring.coreos.com/v1", m.GetAPIVersion())
				assert.Equal(t, "kps", m.GetLabels()["release"])
				sel, _, err := unstructured.NestedStringMap(m.Object, "spec", "selector", "matchLabels")
				require.NoError(t, err)
				if kind == "PodMonitor" {
					other := map[string]corev1.PodTemplateSpec{controllerName: plugin, pluginName: ctrl}[name]
					assert.True(t, labels.SelectorFromSet(sel).Matches(labels.Set(pods.Labels)), "%s selects its pods", name)
					assert.False(t, labels.SelectorFromSet(sel).Matches(labels.Set(other.Labels)), "%s selects only its pods", name)
				} else {
					var matched []string
					for _, o := range objs {
						if o.GetKind() == "Service" && labels.SelectorFromSet(sel).Matches(labels.Set(o.GetLabels())) {
							matched = append(matched, o.GetName())
						}
					}
					assert.Equal(t, []string{name + "-metrics"}, matched, "%s selects its metrics Service only (not the webhook's)", name)
				}
				field := map[string]string{"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}[kind]
				eps, _, err := unstructured.NestedSlice(m.Object, "spec", field)
				require.NoError(t, err)
				require.Len(t, eps, 1)
				assert.Equal(t, map[string]any{"port": "metrics", "path": "/metrics", "honorLabels": true, "interval": "15s", "scrapeTimeout": "10s"}, eps[0],
					"honorLabels: the series' own namespace/pod labels must not become exported_*")
				ns, _, err := unstructured.NestedStringSlice(m.Object, "spec", "namespaceSelector", "matchNames")
				require.NoError(t, err)
				assert.Equal(t, []string{namespace}, ns)
			}
		})
	}
}

// ruleGroups reads the chart's rules file.
func ruleGroups(t *testing.T, c chart) []any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "rules", "tierra.rules.yaml"))
	require.NoError(t, err)
	var file map[string]any
	require.NoError(t, yaml.Unmarshal(data, &file))
	groups, ok := file["groups"].([]any)
	require.True(t, ok, "the rules file has groups")
	return groups
}

func alertNames(groups []any) []string {
	var names []string
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			if a, ok := r.(map[string]any)["alert"].(string); ok {
				names = append(names, a)
			}
		}
	}
	return names
}

// TestChartPrometheusRule: the PrometheusRule carries the rules file's
// groups unchanged (the ones promtool tests), less the disabled alerts;
// the schema's list of alert names is the file's.
func TestChartPrometheusRule(t *testing.T) {
	c := newChart(t)
	groups := ruleGroups(t, c)
	alerts := alertNames(groups)
	require.Contains(t, alerts, "TierraStrandedGPUs")

	out, err := c.template("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=kps")
	require.NoError(t, err)
	rule := find(t, decode(t, out), "PrometheusRule", release)
	assert.Equal(t, "kps", rule.GetLabels()["release"])
	got, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	require.NoError(t, err)
	assert.Equal(t, groups, got, "the shipped rules, as promtool tested them")

	out, err = c.template("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.disabledAlerts={TierraClaimIdle,TierraClaimsWaiting}")
	require.NoError(t, err)
	got, _, err = unstructured.NestedSlice(find(t, decode(t, out), "PrometheusRule", release).Object, "spec", "groups")
	require.NoError(t, err)
	var want []string
	for _, a := range alerts {
		if a != "TierraClaimIdle" && a != "TierraClaimsWaiting" {
			want = append(want, a)
		}
	}
	assert.Equal(t, want, alertNames(got))
	assert.Len(t, got, len(groups), "recording rules stay")

	data, err := os.ReadFile(filepath.Join(c.dir, "values.schema.json"))
	require.NoError(t, err)
	var schema struct {
		Properties struct {
			Metrics struct {
				Properties struct {
					PrometheusRule struct {
						Properties struct {
							DisabledAlerts struct {
								Items struct {
									Enum []string `json:"enum"`
								} `json:"items"`
							} `json:"disabledAlerts"`
						} `json:"properties"`
					} `json:"prometheusRule"`
				} `json:"properties"`
			} `json:"metrics"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &schema))
	assert.ElementsMatch(t, alerts, schema.Properties.Metrics.Properties.PrometheusRule.Properties.DisabledAlerts.Items.Enum,
		"values.schema.json lists the rules file's alerts")
}

func TestChartRefusesBadMetricsValues(t *testing.T) {
	c := newChart(t)
	tests := map[string]struct {
		set     []string
		wantErr string
	}{
		"both monitors":           {set: []string{"metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true"}, wantErr: "enable one"},
		"monitor without metrics": {set: []string{"metrics.enabled=false", "metrics.serviceMonitor.enabled=true"}, wantErr: "need metrics.enabled"},
		"webhook's port":          {set: []string{"metrics.port=9443"}, wantErr: "metrics.port 9443 is the controller's webhook port"},
		"unknown alert":           {set: []string{"metrics.prometheusRule.disabledAlerts={TierraNope}"}, wantErr: "disabledAlerts/0"},
		"bad interval":            {set: []string{"metrics.serviceMonitor.interval=soon"}, wantErr: "/metrics/serviceMonitor/interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.template(tc.set...)
			require.Error(t, err, "helm template must refuse %v", tc.set)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}
