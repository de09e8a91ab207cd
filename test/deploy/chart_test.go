package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

const (
	controllerName = release + "-controller"
	pluginName     = release + "-kubelet-plugin"
)

func TestChartLint(t *testing.T) {
	c := newChart(t)
	out, err := c.run("lint", c.dir, "--strict", "--kube-version", kubeVersion)
	require.NoError(t, err)
	assert.Contains(t, out, "1 chart(s) linted, 0 chart(s) failed")
	out, err = c.run("lint", c.dir, "--strict", "--kube-version", kubeVersion, "--set", "plugin.machine=fake:dgxh200")
	require.NoError(t, err, "the demo values lint too")
	assert.Contains(t, out, "0 chart(s) failed")
}

func TestChartDefaults(t *testing.T) {
	c := newChart(t)
	out, err := c.template()
	require.NoError(t, err)
	objs := decode(t, out)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	assert.Equal(t, map[string]int{"CustomResourceDefinition": 1, "ServiceAccount": 2, "ClusterRole": 2,
		"ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2, "Deployment": 1, "DaemonSet": 1,
		"ValidatingAdmissionPolicy": 3, "ValidatingAdmissionPolicyBinding": 3,
		"MutatingAdmissionPolicy": 2, "MutatingAdmissionPolicyBinding": 2,
		"ValidatingWebhookConfiguration": 1, "Service": 3, "Secret": 1, "TierPolicy": 1}, kinds,
		"defaults install the starting TierPolicy and no fake machine")

	var ds appsv1.DaemonSet
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "DaemonSet", pluginName).Object, &ds))
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	require.NotNil(t, ru, "the plugin rolls")
	assert.Equal(t, "1", ru.MaxSurge.String(), "the new plugin starts beside the old one")
	assert.Equal(t, "0", ru.MaxUnavailable.String(), "a node never goes without its plugin")
	plugin := ds.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "spec.nodeName", envField(t, plugin, "TIERRA_NODE_NAME"))
	assert.Equal(t, "metadata.uid", envField(t, plugin, "TIERRA_POD_UID"), "per-pod sockets (kubeletplugin.RollingUpdate)")
	assert.Empty(t, envValue(plugin, "TIERRA_MACHINE"), "real NVML by default")
	assert.Equal(t, plugin.Image, envValue(plugin, "TIERRA_MPS_DAEMON_IMAGE"), "MPS daemons run in pods of their own, from the plugin's image")
	assert.Equal(t, "metadata.namespace", envField(t, plugin, "TIERRA_NAMESPACE"), "the daemon pods go to the plugin's namespace")
	mps := find(t, objs, "Role", pluginName+"-mps")
	assert.Contains(t, fmt.Sprint(mps.Object["rules"]), "deployments", "the plugin may manage its MPS daemon Deployments")
	require.NotNil(t, plugin.SecurityContext.Privileged)
	assert.True(t, *plugin.SecurityContext.Privileged, "NVML and MIG need the GPU device nodes")
	mounts := map[string]string{}
	for _, m := range plugin.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, dir := range []string{"/var/lib/kubelet/plugins/gpu.tierra.dev", "/var/lib/kubelet/plugins_registry", "/var/run/cdi", "/var/lib/tierra"} {
		assert.Contains(t, mounts, dir)
	}

	var dep appsv1.Deployment
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "Deployment", controllerName).Object, &dep))
	pod := dep.Spec.Template.Spec
	require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	sc := pod.Containers[0].SecurityContext
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.Privileged)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
}

func TestChartFakeMachineIsUnprivileged(t *testing.T) {
	c := newChart(t)
	out, err := c.template("plugin.machine=fake:dgxh200")
	require.NoError(t, err)
	var ds appsv1.DaemonSet
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, decode(t, out), "DaemonSet", pluginName).Object, &ds))
	plugin := ds.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "fake:dgxh200", envValue(plugin, "TIERRA_MACHINE"))
	assert.Equal(t, "/var/lib/tierra/fake-machine.json", envValue(plugin, "TIERRA_FAKE_STATE"), "fake hardware state survives upgrades")
	assert.False(t, *plugin.SecurityContext.Privileged, "a fake machine needs no privileges")
	assert.Empty(t, envValue(plugin, "TIERRA_MPS_DAEMON_IMAGE"), "a fake machine has no MPS binaries for a daemon pod to run")
	assert.Equal(t, []corev1.Capability{"ALL"}, plugin.SecurityContext.Capabilities.Drop)
}

func TestChartRefusesBadValues(t *testing.T) {
	c := newChart(t)
	tests := map[string]struct {
		set     []string
		wantErr []string
	}{
		"machine of unknown form": {set: []string{"plugin.machine=nvml"},
			wantErr: []string{`plugin.machine "nvml" is not supported`, `"fake:<name>"`, "dgxa100, dgxh100, dgxh200, dgxb200, l4x4, mixed"}},
		"unknown fake machine": {set: []string{"plugin.machine=fake:dgx9000"},
			wantErr: []string{`unknown fake machine "dgx9000"`, "allowed: dgxa100, dgxh100"}},
		"bad tier name": {set: []string{"tierPolicy.spec.tiers[0].name=Fast_Lane", "tierPolicy.spec.tiers[0].partitioning=Whole"},
			wantErr: []string{`tierPolicy.spec.tiers[0].name "Fast_Lane" is not a valid tier name`, "DNS label"}},
		"reserved tier name": {set: []string{"tierPolicy.spec.tiers[0].name=mig", "tierPolicy.spec.tiers[0].partitioning=MIG"},
			wantErr: []string{`tierPolicy.spec.tiers[0].name "mig" is reserved`}},
		"unknown partitioning": {set: []string{"tierPolicy.spec.tiers[0].name=fast", "tierPolicy.spec.tiers[0].partitioning=Halves"},
			wantErr: []string{`partitioning "Halves" is not supported; allowed: Whole, MIG, Shared`}},
		"tenant allowed an undefined tier": {set: []string{"tierPolicy.spec.tiers[0].name=fast", "tierPolicy.spec.tiers[0].partitioning=Whole",
			"tierPolicy.spec.tenants[0].name=team", "tierPolicy.spec.tenants[0].allowedTiers={fast,slow}"},
			wantErr: []string{`tierPolicy.spec.tenants[0] (team).allowedTiers: "slow" is not a tier; allowed: fast`}},
		"relative state dir": {set: []string{"plugin.stateDir=var/lib/tierra"},
			wantErr: []string{"/plugin/stateDir", "does not match pattern"}},
		"unknown value (schema)": {set: []string{"plugin.machnie=fake:dgxh200"},
			wantErr: []string{"additional properties 'machnie' not allowed"}},
		"fake MIG on real GPUs": {set: []string{"plugin.fakeMIGNodes=tier"},
			wantErr: []string{`plugin.fakeMIGNodes "tier" needs a fake machine`}},
		"two controllers (no leader election)": {set: []string{"controller.replicas=2"},
			wantErr: []string{"/controller/replicas", "maximum"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.template(tc.set...)
			require.Error(t, err, "helm template must refuse %v", tc.set)
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestChartInstallsTierPolicyFromValues(t *testing.T) {
	c := newChart(t)
	out, err := c.template("tierPolicy.name=prod", "tierPolicy.spec.tiers[0].name=fast", "tierPolicy.spec.tiers[0].partitioning=Whole",
		"tierPolicy.spec.tenants[0].name=team", "tierPolicy.spec.tenants[0].namespaceSelector.matchLabels.team=a",
		"tierPolicy.spec.tenants[0].allowedTiers={fast}")
	require.NoError(t, err)
	objs := decode(t, out)
	p := find(t, objs, "TierPolicy", "prod")
	tiers, err := field(p, "spec", "tiers")
	require.NoError(t, err)
	assert.Equal(t, []any{map[string]any{"name": "fast", "partitioning": "Whole"}}, tiers)
	ref, err := field(find(t, objs, "ValidatingAdmissionPolicyBinding", release+"-tenancy"), "spec", "paramRef", "name")
	require.NoError(t, err)
	assert.Equal(t, "prod", ref, "tenancy admission reads the named TierPolicy")
}

func envField(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			require.NotNil(t, e.ValueFrom, "%s comes from the downward API", name)
			require.NotNil(t, e.ValueFrom.FieldRef, "%s comes from the downward API", name)
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	t.Fatalf("no env %s", name)
	return ""
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestChartKnowsEveryFakeMachine keeps the chart's list of fake machines
// (templates/validation.yaml) equal to the plugin's (nvgpu.FakeMachines).
func TestChartKnowsEveryFakeMachine(t *testing.T) {
	c := newChart(t)
	for _, m := range nvgpu.FakeMachines() {
		_, err := c.template("plugin.machine=" + nvgpu.FakePrefix + m)
		assert.NoError(t, err, "fake machine %s", m)
	}
	_, err := c.template("plugin.machine=fake:none")
	require.Error(t, err)
	_, allowed, ok := strings.Cut(err.Error(), "allowed: ")
	require.True(t, ok, "the refusal lists the allowed machines: %v", err)
	listed := strings.Split(strings.TrimSpace(strings.SplitN(allowed, "\n", 2)[0]), ", ")
	assert.ElementsMatch(t, nvgpu.FakeMachines(), listed)
}
