package deploy

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// The chart's PriorityClasses are opt-in, and when on they are the ones
// demo/priorityclasses.yaml (which the e2e preemption test applies) holds:
// one set of tier priorities, whichever way an admin installs them.
func TestChartPriorityClassesAreTheDemos(t *testing.T) {
	c := newChart(t)
	out, err := c.template()
	require.NoError(t, err)
	for _, o := range decode(t, out) {
		assert.NotEqual(t, "PriorityClass", o.GetKind(), "PriorityClass %s rendered by default", o.GetName())
	}

	out, err = c.template("priorityClasses.create=true")
	require.NoError(t, err)
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	demo, err := manifests.Read(filepath.Join(root, "demo/priorityclasses.yaml"))
	require.NoError(t, err)
	require.Len(t, demo, 3)
	objs := decode(t, out)
	rendered := 0
	for _, o := range objs {
		if o.GetKind() == "PriorityClass" {
			rendered++
		}
	}
	assert.Equal(t, len(demo), rendered, "the chart renders the demo's classes and no others")
	for _, want := range demo {
		got := find(t, objs, "PriorityClass", want.GetName())
		for _, f := range []string{"value", "preemptionPolicy", "description"} {
			w, _, _ := unstructured.NestedFieldNoCopy(want.Object, f)
			g, _, _ := unstructured.NestedFieldNoCopy(got.Object, f)
			assert.EqualValues(t, w, g, "%s %s", want.GetName(), f)
		}
	}

	_, err = c.template("priorityClasses.create=true", "priorityClasses.classes[0].preemptionPolicy=Sometimes")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "preemptionPolicy")
	assert.Contains(t, err.Error(), "'PreemptLowerPriority', 'Never'")
}
