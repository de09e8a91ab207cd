package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/nodesim"
)

// SetUp starts a suite's stack on the control plane c, with dir for its
// state. after runs once the tests have, with their exit code (nil: nothing
// to do); it is called even when SetUp fails, to stop what was started.
type SetUp func(ctx context.Context, c *cluster.Cluster, dir string) (after func(code int) error, err error)

// Main is a test package's TestMain on one local control plane: a short
// state directory (unix socket paths must stay short), the cluster with
// opts (StateDir, StopWithParent and Log are set here), setUp, the tests,
// then after and the cluster stopped. what names the suite in its output.
func Main(m *testing.M, what string, opts cluster.Options, setUp SetUp) {
	code, err := runMain(m, what, opts, setUp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s setup: %v\n", what, err)
		code = 1
	}
	os.Exit(code)
}

func runMain(m *testing.M, what string, opts cluster.Options, setUp SetUp) (code int, finalErr error) {
	ctx := klog.NewContext(context.Background(), klog.Background())
	dir, err := os.MkdirTemp("", "t"+what+"-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	opts.StateDir, opts.StopWithParent, opts.Log = filepath.Join(dir, "c"), true, os.Stderr
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return 0, err
	}
	defer func() { finalErr = errors.Join(finalErr, c.Stop()) }()
	after, err := setUp(ctx, c, dir)
	if after != nil {
		defer func() { finalErr = errors.Join(finalErr, after(code)) }()
	}
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "%s stack up in %s\n", what, time.Since(t0).Round(time.Millisecond))
	return m.Run(), nil
}

// StartNodes starts the simulated GPU nodes of the demo cluster file
// (Nodes) that keep accepts (nil: all), once the plugin's namespace exists.
// On error it returns the nodes it started, for the caller to stop.
func (b Base) StartNodes(ctx context.Context, c *cluster.Cluster, dir string, keep func(name string) bool) ([]*nodesim.Node, error) {
	specs, err := Nodes()
	if err != nil {
		return nil, err
	}
	if err := EnsurePluginNamespace(ctx, b.Clientset); err != nil {
		return nil, err
	}
	var nodes []*nodesim.Node
	for i, s := range specs {
		if keep != nil && !keep(s.Name) {
			continue
		}
		n, err := b.StartNode(ctx, c, s, dir, i)
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// StopNodes stops every node, joining their errors.
func StopNodes(nodes []*nodesim.Node) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

// EventSummary is a pod's events as "reason: message" joined by " | ",
// for a failing test's message.
func EventSummary(ctx context.Context, cs kubernetes.Interface, ns, pod string) string {
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": pod}.String(),
	})
	if err != nil {
		return err.Error()
	}
	out := make([]string, 0, len(list.Items))
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return strings.Join(out, " | ")
}
