// Package stack brings Tierra up on the local control plane of package
// cluster, the way an admin would on a real one: the TierPolicy CRD and
// object, the tenants' namespaces, tierra-controller, and GPU nodes
// simulated by package nodesim (the real kubelet plugin binary driven by the
// kubelet's DRA manager). The e2e tests and `make demo` share it.
package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// Files of the repository the stack applies, relative to its root.
const (
	CRDDir        = "deployments/helm/tierra/crds"
	TierPolicy    = "demo/tierpolicy.yaml"
	Namespaces    = "demo/namespaces.yaml"
	ClusterFile   = "demo/cluster.yaml"
	ScenariosDir  = "demo/scenarios"
	binDirEnv     = "TIERRA_STACK_BIN"
	pluginBinary  = "tierra-kubelet-plugin"
	controllerBin = "tierra-controller"
	nodeBinary    = "tierra-node"
	// mpsControl is the stand-in for nvidia-cuda-mps-control the
	// simulated nodes' MPS daemon pods run (test/crash/fakesharing).
	mpsControl = "nvidia-cuda-mps-control"
)

// Binaries are the executables the stack runs.
type Binaries struct {
	Plugin, Controller, Node, MPSControl string
}

// Build compiles the plugin and controller (main module) and the node
// simulator (test module) into dir. With $TIERRA_STACK_BIN set, the
// binaries already there are used instead.
func Build(ctx context.Context, dir string, log io.Writer) (Binaries, error) {
	if pre := os.Getenv(binDirEnv); pre != "" {
		dir = pre
	} else {
		root, err := cluster.RepoRoot()
		if err != nil {
			return Binaries{}, err
		}
		t0 := time.Now()
		fmt.Fprintln(log, "building tierra-kubelet-plugin, tierra-controller, tierra-node and the MPS control stand-in…")
		test := filepath.Join(root, "test")
		for _, b := range []struct{ dir, pkg, out string }{
			{root, "./cmd/" + pluginBinary, dir + "/"}, {root, "./cmd/" + controllerBin, dir + "/"},
			{test, "./cmd/" + nodeBinary, dir + "/"}, {test, "./crash/fakesharing", filepath.Join(dir, mpsControl)},
		} {
			if err := GoBuild(ctx, b.dir, b.pkg, b.out); err != nil {
				return Binaries{}, err
			}
		}
		fmt.Fprintf(log, "built in %s\n", time.Since(t0).Round(time.Millisecond))
	}
	return Binaries{
		Plugin:     filepath.Join(dir, pluginBinary),
		Controller: filepath.Join(dir, controllerBin),
		Node:       filepath.Join(dir, nodeBinary),
		MPSControl: filepath.Join(dir, mpsControl),
	}, nil
}

// GoBuild runs `go build -o out pkg` in the module directory dir; the error
// carries the compiler's output.
func GoBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

// Install applies the TierPolicy CRD, waits until it is served, then the
// demo's TierPolicy, the tenants' namespaces and the chart's tenancy
// admission policies.
func Install(ctx context.Context, c *cluster.Cluster) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	rest, err := c.RESTConfig()
	if err != nil {
		return err
	}
	a, err := manifests.New(rest)
	if err != nil {
		return err
	}
	if err := a.ApplyFiles(ctx, filepath.Join(root, CRDDir)); err != nil {
		return fmt.Errorf("install the TierPolicy CRD: %w", err)
	}
	// Served once discovery knows it: retry the policy until then.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := a.ApplyFiles(ctx, filepath.Join(root, TierPolicy))
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("apply %s: the TierPolicy CRD was never served: %w", TierPolicy, err)
	}
	if err := a.ApplyFiles(ctx, filepath.Join(root, Namespaces)); err != nil {
		return err
	}
	if err := installTenancy(ctx, a, root); err != nil {
		return err
	}
	return installClaimWebhook(ctx, a, c, root)
}

// HelmVersion is the Helm the Makefile builds (make helm).
const HelmVersion = "v3.22.0"

// tenancyTemplates are the chart's admission policies for claims: refuse a
// tier the tenant is not allowed, keep claims to their tenant's slots of
// soft-shared GPUs, and rewrite (or refuse) capacity names the devices do
// not publish.
var tenancyTemplates = []string{
	"templates/vap-tenancy.yaml", "templates/vap-tenancy-binding.yaml",
	"templates/map-tenant-slots.yaml", "templates/map-tenant-slots-binding.yaml",
	"templates/map-capacity-names.yaml", "templates/map-capacity-names-binding.yaml",
	"templates/vap-capacity-names.yaml", "templates/vap-capacity-names-binding.yaml",
}

// installTenancy renders the chart's tenancy admission policies with the
// real Helm and applies them, as `helm install` would.
func installTenancy(ctx context.Context, a *manifests.Applier, root string) error {
	helm := filepath.Join(root, "_output", "tools", "helm-"+HelmVersion)
	if _, err := os.Stat(helm); err != nil {
		return fmt.Errorf("helm %s not found at %s: run make helm", HelmVersion, helm)
	}
	args := []string{"template", "tierra", filepath.Join(root, "deployments/helm/tierra"), "--kube-version", "v1.37.1"}
	for _, t := range tenancyTemplates {
		args = append(args, "--show-only", t)
	}
	out, err := exec.CommandContext(ctx, helm, args...).Output()
	if err != nil {
		return fmt.Errorf("helm template: %w", err)
	}
	objs, err := manifests.Decode(out)
	if err != nil {
		return err
	}
	if err := a.Apply(ctx, objs...); err != nil {
		return fmt.Errorf("install the tenancy admission policies: %w", err)
	}
	return nil
}

// ControllerArgs are tierra-controller's flags for cluster c, serving
// metrics on metricsAddr; "" serves none (the controller's own default,
// :8080, would collide with anything else on the host: two test binaries,
// a node's plugin).
func ControllerArgs(c *cluster.Cluster, metricsAddr string) []string {
	return append([]string{"--kubeconfig=" + c.Kubeconfig(), "--metrics-addr=" + metricsAddr}, webhookArgs(c)...)
}

// WaitClasses waits until the controller has applied every class the demo's
// TierPolicy renders.
func WaitClasses(ctx context.Context, cs kubernetes.Interface) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	policy, err := plan.LoadPolicy(filepath.Join(root, TierPolicy))
	if err != nil {
		return err
	}
	want, err := tiers.Render(policy)
	if err != nil {
		return err
	}
	var missing []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		missing = missing[:0]
		for _, cl := range want {
			if _, err := cs.ResourceV1().DeviceClasses().Get(ctx, cl.Name, metav1.GetOptions{}); err != nil {
				missing = append(missing, cl.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("tierra-controller never applied DeviceClasses %s: %w", strings.Join(missing, ", "), err)
	}
	return nil
}

// Nodes reads demo/cluster.yaml: the GPU nodes to simulate.
func Nodes() ([]plan.NodeSpec, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	f, err := plan.LoadCluster(filepath.Join(root, ClusterFile))
	if err != nil {
		return nil, err
	}
	return f.Nodes, nil
}

// AddKwokNode creates a Node that kwok runs: CPU only, no GPU plugin. It
// returns once kwok reports it Ready and its taints are lifted.
func AddKwokNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Annotations: map[string]string{cluster.KwokNodeAnnotation: "fake"},
		Labels:      map[string]string{corev1.LabelHostname: name, "type": "kwok"},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create kwok node %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return len(n.Spec.Taints) == 0, nil
			}
		}
		return false, nil
	})
}
