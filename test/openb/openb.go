// Package openb brings the openb GPU cluster trace (../shared/data/openb)
// to the local control plane: its node and pod lists, and its pods as a
// Pod and a ResourceClaim of the same name. test/fidelity and
// test/scheduler replay it through the real kube-scheduler.
package openb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/cluster"
)

// Load reads the trace's node list and the pod list podList from
// <repo>/../shared/data/openb, skipping the test (with the reason) when the
// data is absent.
func Load(t testing.TB, podList string) ([]sim.Node, []sim.Pod) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	dir := filepath.Join(root, "..", "shared", "data", "openb")
	if _, err := os.Stat(filepath.Join(dir, sim.NodeListFile)); err != nil {
		t.Skipf("skipping: openb trace not found at %s (%v)", dir, err)
	}
	nodes, err := sim.LoadNodes(filepath.Join(dir, sim.NodeListFile))
	if err != nil {
		t.Fatalf("load nodes: %v", err)
	}
	pods, err := sim.LoadPods(filepath.Join(dir, podList))
	if err != nil {
		t.Fatalf("load pods: %v", err)
	}
	return nodes, pods
}

// Placement says where a replayed pod may go and who schedules it.
type Placement struct {
	Namespace string
	// NodeSelector keeps the pod to its cell's nodes.
	NodeSelector map[string]string
	// SchedulerName is "" for the default scheduler.
	SchedulerName string
}

// Create makes the trace pod's ResourceClaim (from the fixture's published
// devices; none for a pod without GPUs) and its Pod, both named p.Name.
func Create(ctx context.Context, cs kubernetes.Interface, fix *sim.Fixture, p sim.Pod, at Placement) error {
	spec, err := fix.ClaimSpec(p)
	if err != nil {
		return err
	}
	requests := corev1.ResourceList{}
	if p.MilliCPU > 0 {
		requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(p.MilliCPU, resource.DecimalSI)
	}
	if p.MemoryMiB > 0 {
		requests[corev1.ResourceMemory] = *resource.NewQuantity(p.MemoryMiB<<20, resource.BinarySI)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: at.Namespace},
		Spec: corev1.PodSpec{
			SchedulerName: at.SchedulerName,
			NodeSelector:  at.NodeSelector,
			Containers:    []corev1.Container{{Name: "c", Image: "fake", Resources: corev1.ResourceRequirements{Requests: requests}}},
		},
	}
	if spec != nil {
		claim := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: at.Namespace}, Spec: *spec}
		if _, err := cs.ResourceV1().ResourceClaims(at.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create claim %s: %w", p.Name, err)
		}
		pod.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: &claim.Name}}
		pod.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}}
	}
	if _, err := cs.CoreV1().Pods(at.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod %s: %w", p.Name, err)
	}
	return nil
}

// KwokNode is the trace node as a Node kwok plays kubelet for, with the
// trace's CPU and memory, room for 1,000 pods, and the extra labels (its
// cell).
func KwokNode(n sim.Node, labels map[string]string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(n.MilliCPU, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(n.MemoryMiB<<20, resource.BinarySI),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	all := map[string]string{corev1.LabelHostname: n.Name}
	for k, v := range labels {
		all[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        n.Name,
			Labels:      all,
			Annotations: map[string]string{cluster.KwokNodeAnnotation: "fake"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}
