package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/stack"
)

// showMPSDaemons prints each MPS GPU's control daemon: its own pod (which
// outlives the plugin), its readiness, and the limits it was given on its
// control pipe, as the MPS control stand-in recorded them.
func showMPSDaemons(ctx context.Context, c *cluster.Cluster, cs kubernetes.Interface) error {
	pods, err := cs.CoreV1().Pods(stack.PluginNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: sharing.LabelComponent + "=" + sharing.ComponentMPS})
	if err != nil {
		return fmt.Errorf("list MPS daemon pods: %w", err)
	}
	step(fmt.Sprintf("MPS control daemons: one pod per MPS GPU in %s, outliving the plugin", stack.PluginNamespace))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "POD\tNODE\tGPU\tREADY\tLIMITS SET ON THE DAEMON")
	for _, p := range pods.Items {
		node, gpu := p.Annotations[sharing.AnnotationMPSNode], p.Annotations[sharing.AnnotationMPSGPU]
		pipe := filepath.Join(c.StateDir(), "nodes", node, "state", "mps", gpu, "pipe", "fake-limits")
		limits, err := os.ReadFile(pipe)
		set := strings.ReplaceAll(strings.TrimSpace(string(limits)), "\n", "; ")
		if err != nil {
			set = "(none recorded yet)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\n", p.Name, node, gpu, podReady(&p), set)
	}
	return w.Flush()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
