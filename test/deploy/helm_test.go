package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/test/cluster"
)

const (
	// helmVersion is what hack/tools/helm.sh builds.
	helmVersion = "v3.22.0"
	// kubeVersion is the control plane's (test/cluster) version, given to
	// helm template so the chart's kubeVersion constraint is checked.
	kubeVersion = "1.37.1"
	release     = "tierra"
	namespace   = "tierra-system"
)

// chart is the chart under test and the helm binary that renders it.
type chart struct {
	helm, dir string
}

// newChart finds the helm binary: $TIERRA_HELM, else
// _output/tools/helm-<version>. A missing helm fails the test: the chart
// must never go unrendered silently.
func newChart(t *testing.T) chart {
	t.Helper()
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	c := chart{helm: os.Getenv("TIERRA_HELM"), dir: filepath.Join(root, "deployments/helm/tierra")}
	if c.helm == "" {
		c.helm = filepath.Join(root, "_output/tools/helm-"+helmVersion)
	}
	if _, err := os.Stat(c.helm); err != nil {
		t.Fatalf("helm %s not found at %s: run make helm (hack/tools/helm.sh): %v", helmVersion, c.helm, err)
	}
	return c
}

// run runs helm and returns its stdout, or an error holding its stderr.
func (c chart) run(args ...string) (string, error) {
	cmd := exec.Command(c.helm, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// template renders the chart with the CRDs, as release "tierra" in
// namespace tierra-system; set are --set values.
func (c chart) template(set ...string) (string, error) {
	args := []string{"template", release, c.dir, "--namespace", namespace, "--include-crds", "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return c.run(args...)
}

// decode splits a multi-document YAML stream into objects.
func decode(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(stream, "\n---") {
		obj := map[string]any{}
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &obj), "document:\n%s", doc)
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

// find returns the one rendered object of the kind and name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the chart renders no %s %s", kind, name)
	return nil
}

var errNoField = errors.New("no such field")

// field reads a nested field of a rendered object.
func field(o *unstructured.Unstructured, path ...string) (any, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(path, "."), err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", strings.Join(path, "."), errNoField)
	}
	return v, nil
}
