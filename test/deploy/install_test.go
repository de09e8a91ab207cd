package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tierra-gpu/tierra/test/cluster"
)

const (
	nodeA = "node-a"
	nodeB = "node-b"
)

// suite is the control plane with the chart installed.
type suite struct {
	ctx  context.Context
	cfg  *rest.Config
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	root string
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestInstalledChart applies the chart, rendered by the real Helm with its
// default values, to a real control plane and proves what it grants and
// refuses, and that a plugin upgrade keeps prepare working. One control
// plane serves every subtest (they run in order).
func TestInstalledChart(t *testing.T) {
	s := installChart(t, func(s *suite, objs []*unstructured.Unstructured) { serveWebhook(t, s.ctx, objs, s.cs) })
	for _, n := range []string{nodeA, nodeB} {
		_, err := s.cs.CoreV1().Nodes().Create(s.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	s.requireNoTypeWarnings(t)

	t.Run("PluginTokenCarriesItsNode", s.testPluginTokenCarriesItsNode)
	t.Run("PluginWritesOnlyItsNodeSlices", s.testNodeSlices)
	t.Run("OnlyThePluginWritesTierraSlices", s.testForeignTierraSlices)
	t.Run("PluginWritesOnlyItsDriverStatus", s.testClaimStatus)
	t.Run("PluginLeastPrivilege", s.testPluginLeastPrivilege)
	t.Run("ControllerLeastPrivilege", s.testControllerLeastPrivilege)
	t.Run("TenancyAdmission", s.testTenancy)
	t.Run("ClaimWebhook", s.testClaimWebhook)
	t.Run("PluginUpgradeKeepsPrepare", s.testUpgrade)
}

// installChart starts a control plane and applies the chart rendered by the
// real Helm with its default values; before, when set, sees the objects
// first (to point the claim webhook at loopback).
func installChart(t *testing.T, before func(s *suite, objs []*unstructured.Unstructured)) *suite {
	t.Helper()
	ch := newChart(t)
	s := setup(t)
	out, err := ch.template()
	require.NoError(t, err)
	a := newApplier(t, s.cfg)
	require.NoError(t, ensureNamespace(s.ctx, s.cs, namespace, nil))
	t0 := time.Now()
	objs := decode(t, out)
	if before != nil {
		before(s, objs)
	}
	require.NoError(t, a.install(s.ctx, objs), "server-side apply of the rendered chart")
	t.Logf("chart applied in %s", time.Since(t0).Round(time.Millisecond))
	return s
}

func setup(t *testing.T) *suite {
	if err := cluster.CheckBinaries("", false); err != nil {
		t.Skipf("control plane: %v; run %s", err, cluster.BuildCommand)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	// Not t.TempDir: it must outlive Stop, which the cleanup below runs.
	dir, err := os.MkdirTemp("", "tierra-deploy-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "cluster"), StopWithParent: true, Log: logWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("control plane up in %s", time.Since(t0).Round(time.Millisecond))
	s := &suite{ctx: ctx, root: root}
	s.cfg, err = c.RESTConfig()
	require.NoError(t, err)
	s.cs, err = kubernetes.NewForConfig(s.cfg)
	require.NoError(t, err)
	s.dyn, err = dynamic.NewForConfig(s.cfg)
	require.NoError(t, err)
	return s
}

var vapResource = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}

// requireNoTypeWarnings waits for the apiserver to type-check the chart's
// admission policies and fails on any warning: a CEL expression that does
// not fit the objects it reads would otherwise only fail at admission.
func (s *suite) requireNoTypeWarnings(t *testing.T) {
	t.Helper()
	for _, name := range []string{pluginName + "-node-slices", release + "-tenancy", release + "-capacity-names"} {
		var warnings []any
		err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			p, err := s.dyn.Resource(vapResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.GetGeneration() == 0 {
				return false, nil
			}
			observed, _, _ := unstructured.NestedInt64(p.Object, "status", "observedGeneration")
			warnings, _, _ = unstructured.NestedSlice(p.Object, "status", "typeChecking", "expressionWarnings")
			return observed == p.GetGeneration(), nil
		})
		require.NoError(t, err, "policy %s never type-checked", name)
		require.Empty(t, warnings, "policy %s: type-checking warnings", name)
	}
}
