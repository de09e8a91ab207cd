package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// A template whose opaque config misspells a field is refused by the
// apiserver (tierra-controller's claim webhook), with the message prepare
// would give: it never gets a claim, let alone a GPU.
func TestMisspeltConfigFieldIsRefusedAtAdmission(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	objs, err := manifests.Decode([]byte(templateYAML("research", "typo", "dev.gpu.tierra.dev", computeRequest,
		"{strategy: TimeSlicing, timeSlicing: {intervl: Long}}")))
	require.NoError(t, err)
	err = env.apply.Apply(ctx, objs...)
	require.Error(t, err, "the apiserver admitted a template prepare would refuse")
	assert.ErrorContains(t, err, `unknown field "sharing.timeSlicing.intervl"`)
}

// A config that is valid on its own but not on the device it is allocated
// (MPS on a GPU its tier time-slices) passes admission and is refused at
// prepare: the pod gets an event naming both strategies, and nothing is
// prepared.
func TestConfigTheDeviceCannotHaveIsNamedInAnEvent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	t.Cleanup(func() { cleanNamespace(context.WithoutCancel(ctx), t, "research") })
	before := cdiSpecs(t, "l4-dev")
	applyYAML(ctx, t, templateYAML("research", "mps-on-ts", "dev.gpu.tierra.dev", computeRequest, "{strategy: MPS}")+podYAML("research", "mps-on-ts", "mps-on-ts"))
	msg := waitEvent(ctx, t, "research", "mps-on-ts", "FailedPrepareDynamicResources")
	t.Logf("event: %s", msg)
	assert.Contains(t, msg, "sharing.strategy MPS conflicts with the GPU's, TimeSlicing")
	assert.Equal(t, before, cdiSpecs(t, "l4-dev"), "a refused claim left a CDI spec")
}

// Every object of demo/refused (what `make demo` shows admission keeping
// out) is refused by the apiserver, for the reason its file names.
func TestDemoRefusalsAreRefused(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	want := map[string]string{
		"mps-hog.yaml":          "must be between 1 and 100",
		"product-training.yaml": "may not claim DeviceClass training.gpu.tierra.dev",
	}
	files, err := filepath.Glob(filepath.Join(root, "demo/refused/*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(want), "a file of demo/refused without an expected reason here")
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		objs, err := manifests.Decode(data)
		require.NoError(t, err)
		err = env.apply.Apply(ctx, objs...)
		require.Error(t, err, "%s was admitted", f)
		assert.ErrorContains(t, err, want[filepath.Base(f)], f)
	}
}
