package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/test/cluster"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// testEnv is a started control plane with the TierPolicy CRD installed,
// and clients of it.
type testEnv struct {
	c   *cluster.Cluster
	rc  *rest.Config
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

// startEnv skips the test when the control-plane binaries are missing;
// otherwise it starts a control plane, installs the CRD and returns a
// context that ends with the test, or after two minutes.
func startEnv(t *testing.T) (context.Context, testEnv) {
	t.Helper()
	if err := cluster.CheckBinaries("", false); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := testEnv{c: startCluster(ctx, t)}
	var err error
	e.rc, err = e.c.RESTConfig()
	require.NoError(t, err)
	e.cs, err = e.c.Clientset()
	require.NoError(t, err)
	e.dyn, err = dynamic.NewForConfig(e.rc)
	require.NoError(t, err)
	installCRD(ctx, t, e.dyn)
	return ctx, e
}

func startCluster(ctx context.Context, t *testing.T) *cluster.Cluster {
	t.Helper()
	// Not t.TempDir: it must outlive Stop, which the cleanup below runs.
	dir, err := os.MkdirTemp("", "tierra-controller-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{StateDir: dir, StopWithParent: true, Log: logWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("control plane up in %s", time.Since(t0).Round(time.Millisecond))
	return c
}

// installCRD creates the chart's TierPolicy CRD and waits until it is
// established, so the resource is served.
func installCRD(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "deployments/helm/tierra/crds/tierra.dev_tierpolicies.yaml"))
	require.NoError(t, err)
	obj := map[string]any{}
	require.NoError(t, yaml.Unmarshal(data, &obj))
	crd, err := dyn.Resource(crdResource).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	require.NoError(t, err)
	poll(ctx, t, "CRD never established", func(ctx context.Context) (bool, error) {
		got, err := dyn.Resource(crdResource).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

func poll(ctx context.Context, t *testing.T, msg string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, cond), msg)
}

func policies(dyn dynamic.Interface) dynamic.ResourceInterface {
	return dyn.Resource(v1alpha1.TierPolicyResource)
}

func createPolicy(ctx context.Context, t *testing.T, dyn dynamic.Interface, p *v1alpha1.TierPolicy) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	require.NoError(t, err)
	_, err = policies(dyn).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func getPolicy(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string) *v1alpha1.TierPolicy {
	t.Helper()
	u, err := policies(dyn).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	p := &v1alpha1.TierPolicy{}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p))
	return p
}

// updatePolicy changes the stored policy's spec with edit; it returns the
// time of the update, from which the test measures the controller.
func updatePolicy(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string, edit func(*v1alpha1.TierPolicySpec)) time.Time {
	t.Helper()
	t0 := time.Now()
	require.NoError(t, tryUpdatePolicy(ctx, t, dyn, name, edit))
	return t0
}

// tryUpdatePolicy is updatePolicy that returns the apiserver's answer.
func tryUpdatePolicy(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string, edit func(*v1alpha1.TierPolicySpec)) error {
	t.Helper()
	p := getPolicy(ctx, t, dyn, name)
	edit(&p.Spec)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	require.NoError(t, err)
	_, err = policies(dyn).Update(ctx, &unstructured.Unstructured{Object: u}, metav1.UpdateOptions{})
	return err
}

// waitPolicy waits until the policy's status satisfies cond.
func waitPolicy(ctx context.Context, t *testing.T, dyn dynamic.Interface, name, msg string, cond func(*v1alpha1.TierPolicy) bool) *v1alpha1.TierPolicy {
	t.Helper()
	var p *v1alpha1.TierPolicy
	poll(ctx, t, msg, func(ctx context.Context) (bool, error) {
		p = getPolicy(ctx, t, dyn, name)
		return cond(p), nil
	})
	return p
}

func classNames(classes []resourceapi.DeviceClass) []string {
	out := make([]string, 0, len(classes))
	for _, c := range classes {
		out = append(out, c.Name)
	}
	return out
}
