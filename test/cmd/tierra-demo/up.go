package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/stack"
)

// demoNamespaces are where demo/scenarios put their pods (migration: the
// device-plugin-style manifests of demo/scenarios/queues).
var demoNamespaces = []string{"research", "product", migrationNS}

func up(ctx context.Context, o options) error {
	t0 := time.Now()
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	if o.binDir == "" {
		o.binDir = filepath.Join(root, "_output", "bin")
	}
	c, err := startCluster(ctx, o)
	if err != nil {
		return err
	}
	bins, err := stack.Build(ctx, o.binDir, os.Stdout)
	if err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	step("installing the TierPolicy CRD, demo/tierpolicy.yaml and the tenants' namespaces")
	if err := stack.Install(ctx, c); err != nil {
		return err
	}
	if err := runOnce(c, "tierra-controller", bins.Controller, stack.ControllerArgs(c, controllerMetricsAddr)...); err != nil {
		return err
	}
	if slices.Contains(c.Running(), stack.SchedulerName) {
		fmt.Printf("%s already running\n", stack.SchedulerName)
	} else {
		step("starting " + stack.SchedulerName + " (kube-scheduler v1.37.1 + TierraYield); the demo's pods use it")
		if err := stack.StartTierraScheduler(ctx, c, nil); err != nil {
			return err
		}
	}
	if err := stack.WaitClasses(ctx, cs); err != nil {
		return err
	}
	specs, err := startNodes(ctx, c, cs, bins)
	if err != nil {
		return err
	}
	if err := startPrometheus(c, root, len(specs)); err != nil {
		return err
	}
	step("applying demo/scenarios (training, inference, serving, dev)")
	if err := applyScenarios(ctx, c, root); err != nil {
		return err
	}
	waitErr := waitPods(ctx, cs, o.wait)
	step("applying demo/refused: what admission keeps out")
	if err := showRefusals(ctx, c, root); err != nil {
		return err
	}
	if err := report(ctx, c, cs, specs); err != nil {
		return err
	}
	if err := showQueues(ctx, c, cs, root); err != nil {
		return err
	}
	if err := showSchedulers(ctx, cs); err != nil {
		return err
	}
	if err := showMPSDaemons(ctx, c, cs); err != nil {
		return err
	}
	if err := showUse(ctx); err != nil {
		return err
	}
	fmt.Printf("\ndemo up in %s. Everything keeps running:\n  export KUBECONFIG=%s\n  %s get pods,resourceclaims -A\n  logs: %s\n  stop: make demo-down\n",
		time.Since(t0).Round(time.Second), c.Kubeconfig(), filepath.Join(o.binDir, "kubectl"), filepath.Join(c.StateDir(), "logs"))
	return waitErr
}

func step(msg string) { fmt.Println("==", msg) }

// startCluster reuses a running control plane or starts one (with kwok).
func startCluster(ctx context.Context, o options) (*cluster.Cluster, error) {
	if c, err := cluster.Load(o.stateDir); err == nil && slices.Contains(c.Running(), "kube-apiserver") {
		step("reusing the control plane at " + c.Server)
		return c, nil
	}
	step("starting the local control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok)")
	return cluster.Start(ctx, cluster.Options{StateDir: o.stateDir, Kwok: true, Log: os.Stdout})
}

// runOnce starts a process beside the control plane unless it runs already.
func runOnce(c *cluster.Cluster, name, bin string, args ...string) error {
	if slices.Contains(c.Running(), name) {
		fmt.Printf("%s already running\n", name)
		return nil
	}
	step("starting " + name)
	return c.Run(name, bin, args...)
}

// startNodes runs a tierra-node per node of demo/cluster.yaml and one kwok
// node without GPUs, and waits until the GPU nodes publish their devices.
func startNodes(ctx context.Context, c *cluster.Cluster, cs kubernetes.Interface, bins stack.Binaries) ([]plan.NodeSpec, error) {
	specs, err := stack.Nodes()
	if err != nil {
		return nil, err
	}
	if err := stack.EnsurePluginNamespace(ctx, cs); err != nil {
		return nil, err
	}
	for i, s := range specs {
		args := []string{"--name=" + s.Name, "--machine=" + s.Machine, "--kubeconfig=" + c.Kubeconfig(),
			"--plugin-binary=" + bins.Plugin, "--dir=" + filepath.Join(c.StateDir(), "nodes", s.Name),
			fmt.Sprintf("--mig-enabled=%t", s.MIGEnabled), "--labels=" + joinLabels(s.Labels),
			"--plugin-args=" + strings.Join(append(bins.PluginArgs(), "--idle-window="+demoIdleWindow.String(), "--usage-interval=5s"), " "),
			"--images=" + bins.ImagesFlag(), "--metrics-address=" + nodeMetricsAddr(i)}
		if err := runOnce(c, "node-"+s.Name, bins.Node, args...); err != nil {
			return nil, err
		}
	}
	step("adding kwok node cpu-0 (no GPUs)")
	if err := stack.AddKwokNode(ctx, cs, "cpu-0"); err != nil {
		return nil, err
	}
	for _, s := range specs {
		if err := waitNode(ctx, c, cs, s.Name); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

func joinLabels(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// waitNode waits until the node is schedulable and its plugin published.
func waitNode(ctx context.Context, c *cluster.Cluster, cs kubernetes.Interface, name string) error {
	t0 := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(node.Spec.Taints) > 0 {
			return false, nil
		}
		list, err := cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
		return err == nil && len(list.Items) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("GPU node %s never became ready (log %s): %w", name, c.LogFile("node-"+name), err)
	}
	fmt.Printf("GPU node %s ready in %s\n", name, time.Since(t0).Round(time.Millisecond))
	return nil
}

// applyScenarios applies demo/scenarios with every pod scheduled by
// tierra-scheduler (the manifests leave schedulerName unset, so that they
// also work on a cluster without it, as demo/kind's).
func applyScenarios(ctx context.Context, c *cluster.Cluster, root string) error {
	a, err := applier(c)
	if err != nil {
		return err
	}
	objs, err := manifests.Read(filepath.Join(root, stack.ScenariosDir))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() == "Pod" {
			if err := unstructured.SetNestedField(o.Object, stack.SchedulerName, "spec", "schedulerName"); err != nil {
				return fmt.Errorf("pod %s: %w", o.GetName(), err)
			}
		}
	}
	return a.Apply(ctx, objs...)
}

// applier applies manifests to cluster c as its admin.
func applier(c *cluster.Cluster) (*manifests.Applier, error) {
	rest, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return manifests.New(rest)
}

// waitPods waits until every pod of the demo runs (or ran: a second demo
// finds the finished device-plugin Job), printing progress; it names the
// pods that did not, with their last event.
func waitPods(ctx context.Context, cs kubernetes.Interface, limit time.Duration) error {
	var pending []corev1.Pod
	last := -1
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		total := 0
		for _, ns := range demoNamespaces {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				total++
				if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodSucceeded {
					pending = append(pending, p)
				}
			}
		}
		if running := total - len(pending); running != last {
			fmt.Printf("pods running: %d/%d\n", running, total)
			last = running
		}
		return total > 0 && len(pending) == 0, nil
	})
	if err == nil {
		return nil
	}
	var names []string
	for _, p := range pending {
		names = append(names, p.Namespace+"/"+p.Name+" ("+lastEvent(ctx, cs, &p)+")")
	}
	return errors.Join(fmt.Errorf("pods not running after %s: %s", limit, strings.Join(names, "; ")), err)
}

func lastEvent(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod) string {
	list, err := cs.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
	if err != nil || len(list.Items) == 0 {
		return "no events"
	}
	e := list.Items[len(list.Items)-1]
	return e.Reason + ": " + e.Message
}
