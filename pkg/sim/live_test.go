package sim

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLiveClusterReadsWhatWasPublished reads a cluster holding the nodes,
// slices and classes PublishCluster made (a fake clientset here; the
// control-plane test in test/sim does the same against kube-apiserver)
// and replays the same workload with the same outcome.
func TestLiveClusterReadsWhatWasPublished(t *testing.T) {
	offline, pods := migCluster(t, "mig.yaml")
	var objs []runtime.Object
	for _, dc := range offline.Classes {
		objs = append(objs, dc)
	}
	for _, n := range offline.Nodes {
		alloc := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(n.MilliCPU, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(n.Memory, resource.BinarySI),
		}
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}, Status: corev1.NodeStatus{Allocatable: alloc}})
		for _, s := range n.Slices {
			objs = append(objs, s.DeepCopy())
		}
	}
	objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cordoned"}, Spec: corev1.NodeSpec{Unschedulable: true}})
	live, err := LiveCluster(context.Background(), fake.NewSimpleClientset(objs...))
	require.NoError(t, err)
	assert.Equal(t, 32, live.GPUs)
	assert.Equal(t, []string{"inference", "training"}, live.TierNames())
	require.Len(t, live.Nodes, 4, "the cordoned node is left out")

	opts := CompareOptions{Scorers: []string{ScorerFrag}, Seeds: []int64{42}, MaxLoad: 1.3}
	tr := &Trace{Name: "mig", Pods: pods}
	want, err := Compare(context.Background(), []*Cluster{offline}, tr, opts)
	require.NoError(t, err)
	got, err := Compare(context.Background(), []*Cluster{live}, tr, opts)
	require.NoError(t, err)
	w, g := want.Rows[0], got.Rows[0]
	w.Cluster = LiveName
	for _, rows := range [][]TierRow{w.Tiers, g.Tiers} {
		sort.Slice(rows, func(i, j int) bool { return rows[i].Tier < rows[j].Tier })
	}
	assert.Equal(t, w, g)
}

func TestLiveClusterNeedsTheTierClasses(t *testing.T) {
	offline, _ := migCluster(t, "mig.yaml")
	objs := []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: offline.Nodes[0].Name}}}
	for _, s := range offline.Nodes[0].Slices {
		objs = append(objs, s.DeepCopy())
	}
	_, err := LiveCluster(context.Background(), fake.NewSimpleClientset(objs...))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DeviceClass inference.gpu.tierra.dev does not exist")
}
